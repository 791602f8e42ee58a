"""The reviews the RNN reads, written once for every framework: IMDB (Keras' imdb.npz, where its host
is reachable) or a seeded synthetic corpus shaped like it, one tokenizer, and one padded loader.

Both sources give each review as word ranks (1 the most frequent word) and a label (1 positive).
The tokenizer numbers them as Keras does (0 padding, 1 the start mark, words from 4 = rank + 3, and 2
for an id of 30,000 or more, a rank of 29,997 or more, as num_words=30000 cuts them), keeps the last
150 ids, and pads after them: every framework
then reads each review's own last step, which for a one-directional GRU is exactly what it computes
without any padding. Python 3.6 compatible.
"""
import os

import numpy as np

import datasets
from common import SEED
from datasets import DatasetError

IMDB_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"
IMDB_SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"  # Keras' imdb.load_data
VOCAB, MAXLEN = 30000, 150  # the seed's MAXFEATURES and MAXLEN
PAD, START, OOV, INDEX_FROM = 0, 1, 2, 3
SPLITS = ("train", "test")


# --- IMDB ---------------------------------------------------------------------------------------

def verify_imdb(path):
    if datasets.file_sha256(path) != IMDB_SHA256:
        raise DatasetError("{} is not Keras' imdb.npz (SHA-256 differs): delete it and run again to "
                           "download it anew".format(path))


def read_imdb(path):
    """{split: (reviews, labels)} from Keras' imdb.npz, after its checksum: its arrays are pickled
    lists, so nothing is unpickled before the file is known to be that one."""
    verify_imdb(path)
    with np.load(path, allow_pickle=True) as f:
        return {s: (list(f["x_" + s]), np.asarray(f["y_" + s], np.int64)) for s in SPLITS}


# --- A synthetic corpus shaped like IMDB --------------------------------------------------------

RANKS = 88584  # IMDB's distinct words
NEGATIONS = np.array([21, 54, 117])  # frequent words that flip the polarity word after them
POSITIVE, NEGATIVE = np.arange(300, 310), np.arange(700, 710)  # within the vocabulary, each seen often
PHRASES, AGREE, NEGATED = 0.25, 0.9, 0.3  # a polarity phrase per 4 words; 9 in 10 say the label
SYNTHETIC_VERSION = 3  # of the rules above: a cached corpus of another version is made anew


def review_lengths(rng, n):
    """Long-tailed, as IMDB's (median about 175 words, a few past 1,000)."""
    return np.clip(np.round(rng.lognormal(np.log(175), 0.7, n)), 10, 2500).astype(np.int64)


def label_of(ids):
    """The rule that makes a synthetic label, on the ids a model sees: each polarity word counts +1 or
    -1, flipped when one of the two words before it is a negation; positive where the sum is."""
    ranks = np.asarray(ids) - INDEX_FROM
    sign = np.isin(ranks, POSITIVE).astype(np.int64) - np.isin(ranks, NEGATIVE)
    negated = np.zeros(len(ranks), bool)
    for back in (1, 2):
        negated[back:] |= np.isin(ranks[:-back], NEGATIONS)
    score = int(np.sum(np.where(negated, -sign, sign)))
    return None if score == 0 else int(score > 0)


def make_review(rng, length, fillers, label):
    """Filler words of a Zipf-like frequency and polarity phrases, most of them saying the label; a
    negation before a phrase's word swaps which list that word comes from, so a positive review has
    "bad" after "not" about as often as "good" alone, and which words it has tell less than their order."""
    words = fillers[0][np.searchsorted(fillers[1], rng.random_sample(length) * fillers[1][-1])]
    at = np.flatnonzero(rng.random_sample(length) < PHRASES)
    positive = (rng.random_sample(len(at)) < AGREE) == bool(label)
    negated = (at >= 2) & (rng.random_sample(len(at)) < NEGATED)
    words[at] = np.where(positive != negated, rng.choice(POSITIVE, len(at)), rng.choice(NEGATIVE, len(at)))
    # after the words, as a phrase's negation may fall on an earlier phrase's word
    words[at[negated] - 1 - rng.randint(2, size=negated.sum())] = rng.choice(NEGATIONS, negated.sum())
    return words


def make_synthetic(n_train=25000, n_test=25000, seed=SEED):
    """{split: (reviews, labels)}, positive and negative in turn; a review whose visible part the rule
    does not give the label it was drawn for is drawn again, so every label is the rule's."""
    rng = np.random.RandomState(seed)
    ranks = np.setdiff1d(np.arange(1, RANKS + 1), np.concatenate([NEGATIONS, POSITIVE, NEGATIVE]))
    fillers = (ranks, np.cumsum(1.0 / ranks ** 1.05))
    out = {}
    for split, n in zip(SPLITS, (n_train, n_test)):
        reviews, labels = [], np.arange(n) % 2
        while len(reviews) < n:
            label = labels[len(reviews)]
            words = make_review(rng, review_lengths(rng, 1)[0], fillers, label)
            if label_of(tokenize(words)[-MAXLEN:]) == label:
                reviews.append(words)
        order = rng.permutation(n)
        out[split] = ([reviews[i] for i in order], labels[order].astype(np.int64))
    return out


# --- One tokenizer, one loader ------------------------------------------------------------------

def tokenize(review, vocab=VOCAB):
    """Word ranks as Keras numbers them: the start mark, then rank + 3, or 2 past the vocabulary."""
    ids = np.asarray(review, np.int64).reshape(-1) + INDEX_FROM
    if ids.size and ids.min() < INDEX_FROM + 1:
        raise DatasetError("a review has a word rank below 1 ({}): ranks start at 1, the most frequent "
                           "word".format(ids.min() - INDEX_FROM))
    ids[ids >= vocab] = OOV
    return np.concatenate([[START], ids])


def pad(reviews, maxlen=MAXLEN, vocab=VOCAB):
    """(ids (N, maxlen) int32, lengths (N,) int32): each review's last maxlen ids from the first
    column, zeros after them. An empty review is its start mark alone (length 1)."""
    ids = np.zeros((len(reviews), maxlen), np.int32)
    lengths = np.zeros(len(reviews), np.int32)
    for i, review in enumerate(reviews):
        kept = tokenize(review, vocab)[-maxlen:]
        ids[i, :len(kept)], lengths[i] = kept, len(kept)
    return ids, lengths


def lengths(ids):
    """Each padded review's length: its ids before the first padding (no real id is 0)."""
    return (np.asarray(ids) != PAD).sum(axis=1)


# --- Cache, choice and the loader every framework calls ----------------------------------------

ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def cache_dir(name):
    return os.path.join(datasets.CACHE_DIR, "reviews-" + name + (
        "-v{}".format(SYNTHETIC_VERSION) if name == "synthetic" else ""))


def resolve(name):
    """'auto' -> IMDB if it is here or its host answers, else the synthetic corpus."""
    if name not in ("auto", "imdb", "synthetic"):
        raise DatasetError("unknown review dataset {!r}: choose auto, imdb or synthetic".format(name))
    if name != "auto":
        return name
    here = os.path.exists(os.path.join(datasets.CACHE_DIR, "imdb.npz")) or os.path.isdir(cache_dir("imdb"))
    return "imdb" if here or datasets.reachable("storage.googleapis.com") else "synthetic"


def prepare(name):
    """Tokenize and pad the corpus once; each array is written atomically into the cache."""
    folder = cache_dir(name)
    if all(os.path.exists(os.path.join(folder, a + ".npy")) for a in ARRAYS):
        return
    if name == "imdb":
        archive = os.path.join(datasets.CACHE_DIR, "imdb.npz")
        if not os.path.exists(archive):
            datasets.download(IMDB_URL, archive, timeout=60, verify=verify_imdb, instead='"synthetic" (made here)')
        corpus = read_imdb(archive)
    else:
        corpus = make_synthetic()
    datasets.save_arrays(folder, [(a + "_" + split, value) for split in SPLITS for a, value in (
        ("x", pad(corpus[split][0])[0]), ("y", corpus[split][1].astype(np.int32)))])


def reviews_for_library(dataset, profile):
    """The loader every RNN module calls: (x_train, x_test, y_train, y_test), ids (N, 150) int32
    padded after each review, labels int32; the profile's first n_train and n_test reviews."""
    folder = cache_dir(dataset)
    try:
        x_train, y_train, x_test, y_test = [np.load(os.path.join(folder, a + ".npy")) for a in ARRAYS]
    except (OSError, ValueError, EOFError) as e:
        raise DatasetError("the reviews under {} are missing or corrupt ({}): delete that folder and "
                           "run again to rebuild them".format(folder, e))
    n_train, n_test = profile["n_train"], profile["n_test"]
    return x_train[:n_train], x_test[:n_test], y_train[:n_train], y_test[:n_test]
