"""Writes the demo corpus, `pipeline/demo/reviews.jsonl`: 300 short, original movie reviews.

Usage:

    python scripts/write_demo_corpus.py [--out PATH] [--count 300] [--seed 13]

Each review is composed from the phrase banks below (all written for this project) and written as one JSON
object a line, `{"id": "demo-0001", "text": "...", "label": 0 or 1}`, with 0 = negative and 1 = positive.
Text follows the Stanford Sentiment Treebank convention: lowercase, tokens separated by single spaces,
punctuation and clitics ("'s", "n't") as separate tokens. The mix covers plain reviews, contrastive ones
("the acting is great , but the plot is dull .", labelled by the clause that carries the verdict),
negations ("never boring", "not funny") and intensifiers. The output is deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.demo import DEMO_CORPUS

MIN_TOKENS, MAX_TOKENS = 4, 35


@dataclass(frozen=True)
class Aspect:
    """Something a review can praise or criticise, with predicates that fit it ("the score" + "is" + ...)."""

    noun: str
    verb: str
    good: tuple[str, ...]
    bad: tuple[str, ...]


# Phrase banks, all written for this project; packed by hand rather than one item a line.
# fmt: off
ASPECTS = (
    Aspect("the acting", "is",
        ("superb", "natural", "convincing", "excellent", "terrific"),
        ("wooden", "stiff", "hammy", "unconvincing", "over the top")),
    Aspect("the plot", "is",
        ("clever", "gripping", "original", "full of surprises", "tightly built"),
        ("predictable", "thin", "a mess", "full of holes", "far too convoluted")),
    Aspect("the script", "is",
        ("sharp", "witty", "smart", "well written", "full of good lines"),
        ("clumsy", "lazy", "full of cliches", "painfully obvious", "a first draft at best")),
    Aspect("the dialogue", "is",
        ("crisp", "funny", "believable", "sharp", "natural"),
        ("clunky", "stilted", "awkward", "embarrassing", "painful to sit through")),
    Aspect("the pacing", "is",
        ("brisk", "confident", "just right", "perfectly judged"),
        ("sluggish", "uneven", "slow", "all over the place", "off from the start")),
    Aspect("the score", "is",
        ("haunting", "gorgeous", "lovely", "stirring", "beautifully used"),
        ("intrusive", "forgettable", "overbearing", "loud and annoying")),
    Aspect("the cinematography", "is",
        ("stunning", "gorgeous", "beautiful", "breathtaking", "lush"),
        ("murky", "flat", "ugly", "dull to look at")),
    Aspect("the ending", "is",
        ("moving", "perfect", "satisfying", "earned", "a real surprise"),
        ("rushed", "silly", "unsatisfying", "baffling", "a letdown")),
    Aspect("the characters", "are",
        ("likable", "memorable", "well drawn", "easy to root for"),
        ("annoying", "forgettable", "paper thin", "hard to care about")),
    Aspect("the jokes", "are",
        ("funny", "clever", "fresh", "well timed"),
        ("stale", "lame", "tired", "crude", "old and obvious")),
    Aspect("the effects", "are",
        ("impressive", "seamless", "dazzling", "inventive"),
        ("cheap", "cheesy", "distracting", "unfinished")),
    Aspect("the lead", "is",
        ("terrific", "charming", "magnetic", "wonderful", "a revelation"),
        ("miscast", "bland", "lifeless", "out of his depth")),
    Aspect("the villain", "is",
        ("scary", "memorable", "genuinely menacing", "deliciously nasty"),
        ("cartoonish", "toothless", "silly", "forgettable")),
    Aspect("the story", "is",
        ("touching", "engaging", "heartfelt", "absorbing", "simple but effective"),
        ("boring", "tedious", "muddled", "hard to follow", "stretched far too thin")),
    Aspect("the editing", "is",
        ("sharp", "tight", "elegant"),
        ("choppy", "sloppy", "confusing")),
    Aspect("the soundtrack", "is",
        ("great", "catchy", "perfectly chosen"),
        ("grating", "forgettable", "a string of obvious hits")),
    Aspect("the cast", "is",
        ("excellent", "wonderful", "strong across the board", "clearly having fun"),
        ("wasted", "bland", "underused", "badly chosen")),
    Aspect("the humor", "is",
        ("sly", "warm", "genuinely funny", "dry and clever"),
        ("forced", "juvenile", "crude", "mean spirited")),
    Aspect("the romance", "is",
        ("sweet", "tender", "believable", "charming"),
        ("forced", "unconvincing", "dull", "awkward")),
    Aspect("the action", "is",
        ("thrilling", "exciting", "well staged", "easy to follow"),
        ("incoherent", "repetitive", "boring", "hard to follow")),
)
GENRES = (
    "film", "movie", "comedy", "thriller", "drama", "romance", "horror movie", "documentary", "musical",
    "western", "sequel", "animated film", "action movie", "war film", "family film", "period piece", "debut",
    "crime story", "road movie", "coming of age story",
)
INTENSIFIERS = ("", "", "", "very ", "really ", "truly ", "so ", "quite ", "incredibly ", "genuinely ")
EXTREME = frozenset((
    "brilliant", "excellent", "hilarious", "awful", "terrible", "dreadful", "superb", "terrific", "wonderful",
    "stunning", "breathtaking", "perfect", "dazzling", "gorgeous",
))
"""Adjectives that only take 'truly' or 'absolutely', if anything."""
MILD = ("a bit ", "a little ", "somewhat ", "slightly ", "rather ", "at times ")
FILM_GOOD = (
    "wonderful", "delightful", "charming", "moving", "brilliant", "gripping", "beautiful", "hilarious",
    "smart", "entertaining", "powerful", "funny", "touching", "enjoyable", "fresh",
)
FILM_BAD = (
    "boring", "dull", "tedious", "awful", "terrible", "dreadful", "bland", "forgettable", "pointless",
    "lifeless", "silly", "clumsy", "tiresome", "joyless", "predictable",
)
FILM_GOOD_NP = (
    "a gem",
    "a joy",
    "a triumph",
    "great fun",
    "a real treat",
    "a small miracle",
    "a pleasant surprise",
    "pure joy",
    "a delight from start to finish",
)
FILM_BAD_NP = (
    "a mess", "a chore", "a disappointment", "a waste of time", "a slog", "a real letdown",
    "an endurance test", "a total misfire", "two hours of nothing",
)
ROLES = (
    "the lead actress", "the lead actor", "the young star", "the veteran star", "the newcomer",
    "the supporting cast", "the whole cast", "the comic sidekick",
)
PERFORMANCE_GOOD = (
    "brilliant", "warm", "fearless", "touching", "career best", "wonderfully funny", "quietly powerful",
    "star making",
)
PERFORMANCE_BAD = (
    "wooden", "lazy", "one note", "flat", "bizarre", "strangely bored", "shrill", "forgettable",
)
GENRE_QUALITY = {
    "comedy": "funny", "horror movie": "scary", "thriller": "tense", "romance": "romantic", "drama": "moving",
    "action movie": "exciting", "musical": "fun", "family film": "sweet", "documentary": "informative",
    "war film": "gripping", "crime story": "suspenseful",
}
LOVED = ("i loved", "i really enjoyed", "i adored", "we all loved", "i was charmed by", "i had a blast with")
HATED = (
    "i hated", "i disliked", "i could n't stand", "i was bored by", "i regret watching", "i did not enjoy",
)
GOOD_FACTS = (
    "it made me laugh and cry",
    "the whole family enjoyed it",
    "it stays with you long after the credits",
    "every scene feels alive",
    "the two leads have real chemistry",
    "it is smart , funny and tender",
    "i laughed out loud more than once",
    "the audience cheered at the end",
    "it earns every one of its tears",
    "it looks and sounds fantastic",
    "the final act is a knockout",
    "it is full of warmth and wit",
    "it has a big heart",
    "the time flew by",
    "i was hooked from the first scene",
    "it is the rare sequel that tops the original",
    "the kids loved it and so did i",
    "it takes a familiar story and makes it feel new",
    "it gets better every time i watch it",
    "the director knows exactly what she is doing",
    "it treats its audience with respect",
)
BAD_FACTS = (
    "i checked my watch more than once",
    "it drags on for far too long",
    "the two leads have no chemistry",
    "half the audience walked out",
    "i nearly fell asleep",
    "it feels like a cheap tv movie",
    "it is loud , long and empty",
    "the final act falls apart",
    "every twist is visible a mile away",
    "it wastes a talented cast",
    "the whole thing feels lazy",
    "it confuses noise with excitement",
    "nothing in it feels real",
    "it borrows everything and adds nothing",
    "the jokes land with a thud",
    "it is twice as long as it needs to be",
    "the director seems to have lost interest",
    "it is a sequel nobody asked for",
    "i kept waiting for something to happen",
    "it mistakes cruelty for wit",
    "it talks down to its audience",
)
NEGATED_GOOD = (
    "it is never boring",
    "it 's never dull",
    "there is not a single dull moment",
    "i was not disappointed",
    "you wo n't be bored for a second",
    "there is nothing to dislike here",
    "it does n't waste a minute",
    "it is not bad at all",
    "it never feels too long",
    "i could n't stop smiling",
    "i could n't look away",
    "it does n't put a foot wrong",
    "it never talks down to kids",
    "it is n't perfect , but it 's close",
    "i did n't expect much , but it won me over",
    "it never takes the easy way out",
    "no other film this year made me laugh so hard",
    "it does n't feel like a sequel at all",
)
NEGATED_BAD = (
    "it is not funny",
    "it 's not scary at all",
    "it is not worth your time",
    "i did n't care about anyone",
    "it never comes to life",
    "there is nothing new here",
    "it just does n't work",
    "no one seems to be having fun",
    "i could n't wait for it to end",
    "it never finds its footing",
    "not even the cast can save it",
    "it is not as clever as it thinks it is",
    "it is n't very good",
    "it does n't know what it wants to be",
    "nothing about it is memorable",
    "it never builds any tension",
    "i did n't laugh once",
    "it is not the film the trailer promised",
    "no amount of style can hide the story",
)
VERDICTS_GOOD = (
    "highly recommended .",
    "worth seeing .",
    "go see it .",
    "do n't miss it .",
    "a must see .",
    "i 'd happily watch it again .",
    "easily one of the best films of the year .",
    "worth every penny .",
    "recommended .",
    "bring tissues .",
    "you will not regret it .",
    "five stars .",
    "see it on a big screen .",
    "i ca n't wait to see it again .",
    "a real crowd pleaser .",
)
VERDICTS_BAD = (
    "skip it .",
    "avoid .",
    "save your money .",
    "not recommended .",
    "a waste of time .",
    "what a waste of a good cast .",
    "wait for it on tv .",
    "one star .",
    "i want my two hours back .",
    "do n't bother .",
    "not worth the ticket price .",
    "a big disappointment .",
    "stay home .",
    "hard to recommend .",
    "i would not watch it again .",
)
STANDALONE = {
    1: (
        "my kids laughed the whole way through , and so did i .",
        "i went in expecting nothing and came out grinning .",
        "a quiet , patient film that rewards your attention .",
        "funny , sad and wise all at once .",
        "the best thing i 've seen this year , hands down .",
        "it 's the kind of movie that makes you want to call your mother .",
        "a beautiful little film about growing old .",
        "it 's silly , sure , but it 's the good kind of silly .",
        "clever , fast and surprisingly kind .",
        "what a lovely surprise this turned out to be .",
        "it has more ideas in ten minutes than most films have in two hours .",
        "every frame could hang in a gallery .",
        "a thriller that actually thrills .",
        "i walked out of the theater smiling .",
        "it is long , but i never wanted it to end .",
        "the first half is slow , but the payoff is worth the wait .",
        "not a masterpiece , but a very good time .",
        "a warm , gentle comedy with a sharp eye for detail .",
    ),
    0: (
        "i 've seen better acting in a car commercial .",
        "two hours of my life i will never get back .",
        "the trailer was better than the movie .",
        "a long , loud , confusing mess .",
        "it wants to be profound but ends up merely dull .",
        "i stopped caring about halfway through .",
        "the only suspense is wondering when it will end .",
        "a comedy without a single laugh .",
        "it looks expensive and feels empty .",
        "the book was far better .",
        "pretty to look at , but there is nothing underneath .",
        "a sequel that forgets everything that made the first one work .",
        "it starts well , then falls apart completely .",
        "i wanted to like it , but i just could n't .",
        "the cast tries hard , but the script gives them nothing to do .",
        "even the dog seems bored .",
        "great poster , terrible film .",
        "it is not a bad idea for a film , just a badly made one .",
    ),
}
ATTRIBUTIVE_ASPECTS = (
    "the plot", "the script", "the ending", "the lead", "the villain", "the story", "the score",
    "the soundtrack",
)
"""Aspects that read well after 'a ... with a <adjective>' (count nouns)."""
# fmt: on

Maker = Callable[[random.Random, bool, str], str]
"""A clause maker: (rng, good, genre) -> clause text without the final full stop."""


def article(noun_phrase: str) -> str:
    """'a' or 'an', whichever reads right before `noun_phrase`."""
    return "an" if noun_phrase[0] in "aeiou" and not noun_phrase.startswith(("one", "u")) else "a"


def plural(genre: str) -> str:
    """'comedy' -> 'comedies', 'horror movie' -> 'horror movies'."""
    return genre[:-1] + "ies" if genre.endswith("y") and not genre.endswith("ey") else genre + "s"


def single_words(predicates: Sequence[str]) -> list[str]:
    """The one-word predicates: those that take an intensifier or an article before a noun."""
    return [p for p in predicates if " " not in p]


def intensify(rng: random.Random, predicate: str, mild: bool = False) -> str:
    """Put an intensifier (or, with `mild`, a softener) before a one-word predicate; leave phrases alone."""
    if " " in predicate or predicate == "earned":
        return predicate
    if predicate in EXTREME:
        return rng.choice(("", "truly ", "absolutely ")) + predicate
    return rng.choice(MILD if mild else INTENSIFIERS) + predicate


def aspect_clause(
    rng: random.Random, good: bool, genre: str, mild: bool = False, aspect: Aspect | None = None
) -> str:
    """'the plot is predictable', 'the acting is not convincing' or 'the score is truly haunting'."""
    aspect = aspect or rng.choice(ASPECTS)
    negatable = [p for p in single_words(aspect.good) if p not in EXTREME]
    if not good and not mild and negatable and rng.random() < 0.2:
        return f"{aspect.noun} {aspect.verb} not {rng.choice(negatable)}"
    predicate = intensify(rng, rng.choice(aspect.good if good else aspect.bad), mild)
    return f"{aspect.noun} {aspect.verb} {predicate}"


def two_aspect_clause(rng: random.Random, good: bool, genre: str) -> str:
    """Two distinct aspects of the same polarity joined by 'and'."""
    first, second = (aspect_clause(rng, good, genre, aspect=a) for a in rng.sample(ASPECTS, 2))
    return f"{first} and {second}"


def film_clause(rng: random.Random, good: bool, genre: str) -> str:
    """A judgement of the whole film: 'this comedy is really charming', 'it 's a chore'."""
    subject = rng.choice((f"this {genre}", "it"))
    if rng.random() < 0.4:
        phrase = rng.choice(FILM_GOOD_NP if good else FILM_BAD_NP)
        return f"it 's {phrase}" if subject == "it" else f"{subject} is {phrase}"
    return f"{subject} is {intensify(rng, rng.choice(FILM_GOOD if good else FILM_BAD))}"


def attributive_clause(rng: random.Random, good: bool, genre: str) -> str:
    """'a charming comedy with a sharp script' or 'a dull thriller with a cartoonish villain'."""
    adjective = rng.choice(FILM_GOOD if good else FILM_BAD)
    aspect = rng.choice([a for a in ASPECTS if a.noun in ATTRIBUTIVE_ASPECTS])
    detail = rng.choice(single_words(aspect.good if good else aspect.bad))
    noun = aspect.noun.removeprefix("the ")
    return f"{article(adjective)} {adjective} {genre} with {article(detail)} {detail} {noun}"


def personal_clause(rng: random.Random, good: bool, genre: str) -> str:
    """'i adored this western' or 'i could n't stand this sequel'."""
    return f"{rng.choice(LOVED if good else HATED)} this {genre}"


def performance_clause(rng: random.Random, good: bool, genre: str) -> str:
    """'the newcomer gives a fearless performance', 'the whole cast give wooden performances'."""
    quality = rng.choice(PERFORMANCE_GOOD if good else PERFORMANCE_BAD)
    role = rng.choice(ROLES)
    if role.endswith("cast"):
        return f"{role} give {quality} performances"
    return f"{role} gives {article(quality)} {quality} performance"


def superlative_clause(rng: random.Random, good: bool, genre: str) -> str:
    """'it 's one of the best comedies i have seen in years'."""
    best = "best" if good else "worst"
    since = rng.choice(("years", "ages", "a long time"))
    return f"it 's one of the {best} {plural(genre)} i have seen in {since}"


def genre_clause(rng: random.Random, good: bool, genre: str) -> str:
    """Praise or fault in genre terms: 'as a horror movie it is genuinely scary'.

    For a genre without a defining quality, a judgement of the whole film instead.
    """
    if genre not in GENRE_QUALITY:
        return film_clause(rng, good, genre)
    degree = rng.choice(
        ("genuinely ", "really ", "very ", "") if good else ("never ", "not ", "not even remotely ")
    )
    return f"as {article(genre)} {genre} it is {degree}{GENRE_QUALITY[genre]}"


def fact_clause(rng: random.Random, good: bool, genre: str) -> str:
    """A concrete observation: 'i nearly fell asleep'."""
    return rng.choice(GOOD_FACTS if good else BAD_FACTS)


def negated_clause(rng: random.Random, good: bool, genre: str) -> str:
    """A clause whose polarity turns on a negation: 'never boring' (good), 'not funny' (bad)."""
    return rng.choice(NEGATED_GOOD if good else NEGATED_BAD)


MAIN_CLAUSES: tuple[Maker, ...] = (
    aspect_clause,
    two_aspect_clause,
    film_clause,
    film_clause,
    personal_clause,
    performance_clause,
    superlative_clause,
    genre_clause,
    fact_clause,
    fact_clause,
)
"""Clauses that can carry a review's verdict, repeated to weight the choice."""
SENTENCES: tuple[Maker, ...] = (*MAIN_CLAUSES, attributive_clause, aspect_clause)
"""Clauses that can stand as a sentence of their own (a bare noun phrase included)."""


def verdict(rng: random.Random, good: bool) -> str:
    """A closing one-liner: 'highly recommended .' or 'skip it .'."""
    return rng.choice(VERDICTS_GOOD if good else VERDICTS_BAD)


def plain_review(rng: random.Random, good: bool, genre: str) -> str:
    """One or two sentences of one polarity (from different makers), sometimes with a verdict."""
    first = rng.choice(SENTENCES)
    sentences = [first(rng, good, genre) + " ."]
    if rng.random() < 0.45:
        second = rng.choice([m for m in SENTENCES if m is not first])
        sentences.append(second(rng, good, genre) + " .")
    if rng.random() < 0.4:
        sentences.append(verdict(rng, good))
    return " ".join(sentences)


def concession(rng: random.Random, good: bool, genre: str) -> str:
    """A local point of the other polarity; praise conceded in full, faults softened ('a bit slow')."""
    if rng.random() < 0.2:
        return performance_clause(rng, not good, genre)
    return aspect_clause(rng, not good, genre, mild=good)


def contrastive_review(rng: random.Random, good: bool, genre: str) -> str:
    """A concession of the other polarity and the clause that carries the verdict (the label)."""
    conceded, main = concession(rng, good, genre), rng.choice(MAIN_CLAUSES)(rng, good, genre)
    text = rng.choice(
        (
            f"{conceded} , but {main} .",
            f"although {conceded} , {main} .",
            f"{main} , even if {conceded} .",
            f"{conceded} . still , {main} .",
        )
    )
    return f"{text} {verdict(rng, good)}" if rng.random() < 0.3 else text


def negation_review(rng: random.Random, good: bool, genre: str) -> str:
    """A negated clause, alone or next to a plain one, sometimes with a verdict."""
    parts = [negated_clause(rng, good, genre)]
    if rng.random() < 0.6:
        parts.insert(rng.randrange(2), rng.choice(MAIN_CLAUSES)(rng, good, genre))
    text = " . ".join(parts) + " ."
    return f"{text} {verdict(rng, good)}" if rng.random() < 0.25 else text


def standalone_review(rng: random.Random, good: bool, genre: str) -> str:
    """One of the hand-written one-liners."""
    return rng.choice(STANDALONE[int(good)])


KINDS: tuple[tuple[Maker, float], ...] = (
    (plain_review, 0.42),
    (contrastive_review, 0.28),
    (negation_review, 0.2),
    (standalone_review, 0.1),
)


def compose(rng: random.Random, good: bool) -> str:
    """One review of the given polarity about one genre, of a randomly chosen kind."""
    makers, weights = zip(*KINDS, strict=True)
    return rng.choices(makers, weights)[0](rng, good, rng.choice(GENRES))


def acceptable(text: str, seen: set[str]) -> bool:
    """New, of a usable length, and naming each aspect at most once."""
    repeats = any(text.count(f"{a.noun} {a.verb} ") > 1 for a in ASPECTS)
    return text not in seen and MIN_TOKENS <= len(text.split()) <= MAX_TOKENS and not repeats


def write_corpus(out: pathlib.Path, count: int, seed: int) -> list[dict]:
    """Compose `count` distinct reviews, half of each label in random order; write them as JSON lines.

    Returns the rows written.
    """
    rng = random.Random(seed)
    labels = [n % 2 for n in range(count)]
    rng.shuffle(labels)
    rows: list[dict] = []
    seen: set[str] = set()
    for label in labels:
        text = compose(rng, bool(label))
        while not acceptable(text, seen):
            text = compose(rng, bool(label))
        seen.add(text)
        rows.append({"id": f"demo-{len(rows) + 1:04d}", "text": text, "label": label})
    with out.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEMO_CORPUS)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    rows = write_corpus(args.out, args.count, args.seed)
    lengths = [len(r["text"].split()) for r in rows]
    positives = sum(r["label"] for r in rows)
    print(
        f"wrote {len(rows)} reviews ({positives} positive) to {args.out}; "
        f"tokens {min(lengths)}..{max(lengths)}, mean {sum(lengths) / len(lengths):.1f}"
    )


if __name__ == "__main__":
    main()
