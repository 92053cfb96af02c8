"""The model: tokenizer, networks (nn.Modules only), the checkpoint and what it stores (prior and
surrogate parameters). Nothing here encodes or decodes molecules; fitting lives in training/."""
