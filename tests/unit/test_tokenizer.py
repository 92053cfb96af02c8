import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moldesign.model.tokenizer import SPECIAL_TOKENS, TokenizeError, UnknownTokenError, Vocabulary, tokenize


@pytest.mark.parametrize("smiles, tokens", [
    ("CCl", ["C", "Cl"]),
    ("BrC(Br)Cl", ["Br", "C", "(", "Br", ")", "Cl"]),
    ("c1cc[nH]c1", ["c", "1", "c", "c", "[nH]", "c", "1"]),
    ("C%10CC%10", ["C", "%10", "C", "C", "%10"]),
    ("F/C=C\\F", ["F", "/", "C", "=", "C", "\\", "F"]),
    ("N[C@@H](C)C(=O)O", ["N", "[C@@H]", "(", "C", ")", "C", "(", "=", "O", ")", "O"]),
    ("[Na+].[Cl-]", ["[Na+]", ".", "[Cl-]"]),
    ("C#N", ["C", "#", "N"]),
    ("Sc1ncco1", ["S", "c", "1", "n", "c", "c", "o", "1"]),
])
def test_atom_level_tokens(smiles, tokens):
    assert tokenize(smiles) == tokens


def test_lossless_over_the_committed_sample(sample):
    for s in sample["smiles"]:
        assert "".join(tokenize(s)) == s


def test_uncovered_character_is_named():
    with pytest.raises(TokenizeError, match="'X'|\\['X"):
        tokenize("CCX")
    with pytest.raises(TokenizeError, match="!"):
        tokenize("C!C")


# Random strings over the SMILES alphabet plus a few characters the regex must refuse.
ALPHABET = list("BCNOPSFIbcnosp=#()123456789%/\\.-+@[]Hl") + ["Cl", "Br", "[nH]", "%12"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ALPHABET + ["X", "!", " "]), max_size=30))
def test_tokenize_is_lossless_or_raises(parts):
    s = "".join(parts)
    try:
        tokens = tokenize(s)
    except TokenizeError:
        return
    assert "".join(tokens) == s


def test_vocabulary_build_encode_decode_roundtrip(sample):
    smiles = sample["smiles"].tolist()
    vocab = Vocabulary.build(smiles)
    assert tuple(vocab.tokens[:4]) == SPECIAL_TOKENS
    assert vocab.counts["c"] >= vocab.counts["Cl"] > 0
    for s in smiles[:500]:
        ids = vocab.encode(s)
        assert ids[0] == vocab.bos_id and ids[-1] == vocab.eos_id
        assert vocab.decode(ids) == s
    again = Vocabulary.from_dict(vocab.to_dict())
    assert again.tokens == vocab.tokens and again.counts == vocab.counts


def test_unknown_tokens_are_listed_or_mapped_to_unk():
    vocab = Vocabulary.build(["CCO", "c1ccccc1"])
    with pytest.raises(UnknownTokenError, match=r"\['Cl', 'N'\]"):
        vocab.encode("ClCCN")
    ids = vocab.encode("ClCCN", allow_unk=True)
    assert ids.count(vocab.unk_id) == 2
    assert vocab.decode(ids) == "<unk>CC<unk>"


def test_max_len_counts_bos_and_eos():
    vocab = Vocabulary.build(["CCO"])
    assert len(vocab.encode("CCO", max_len=5)) == 5
    with pytest.raises(ValueError, match="max_len is 4"):
        vocab.encode("CCO", max_len=4)


def test_decode_stops_at_eos_and_skips_padding():
    vocab = Vocabulary.build(["CCO"])
    c, o = vocab.index["C"], vocab.index["O"]
    assert vocab.decode([vocab.bos_id, c, o, vocab.eos_id, c, vocab.pad_id]) == "CO"


def test_vocabulary_rejects_bad_token_lists():
    with pytest.raises(ValueError):
        Vocabulary(["C", "<pad>"])
    with pytest.raises(ValueError):
        Vocabulary(list(SPECIAL_TOKENS) + ["C", "C"])
