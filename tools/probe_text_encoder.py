"""Does a text encoder know that the evaluation's new words mean the training ones?

    .venv/bin/python tools/probe_text_encoder.py [--pretrained minilm|PATH]

A policy conditioned on a frozen text encoder can follow "the crimson cube" after training on
"the red cube" only if the encoder puts the two near each other, nearer than "the purple cube".
For every held-out colour word and object noun of the language splits (vla_ros.sim.tasks) this
encodes "reach the <word> <noun>" (or "reach the red <word>") and asks which training word's
sentence is nearest (cosine of the pooled embeddings, as the policy reads them). The share named
right is a ceiling for the `colours`, `nouns` and `colours_and_nouns` splits that no training
without those words can lift. Chance is 1 / the number of training words it chooses among.
"""

from __future__ import annotations

import argparse

import torch

from vla_ros.model.config import PACKAGED_MINILM, TextConfig
from vla_ros.model.encoders import TextEncoder
from vla_ros.sim.objects import COMPOSITIONAL
from vla_ros.sim.tasks import HELD_OUT_COLOURS, HELD_OUT_NOUNS, TRAIN_NOUNS

TEMPLATE = "reach the {colour} {noun}"


def nearest_share(
    encoder: TextEncoder, known: dict[str, str], probe: str, new: dict[str, tuple[str, ...]]
) -> tuple[int, int, list[str]]:
    """For each new word of a meaning in `known` (meaning -> its training sentence): is the
    sentence `probe` with the word in it nearest the training sentence of that meaning?
    Returns (right, asked, the misses as 'word -> chosen (meant)')."""
    meanings = list(known)
    reference = encoder.encode([known[m] for m in meanings]).pooled
    right = asked = 0
    misses = []
    for meaning, words in new.items():
        if meaning not in known:
            continue
        for word in words:
            scores = reference @ encoder.encode([probe.format(word=word)]).pooled[0]
            chosen = meanings[int(torch.argmax(scores))]
            right += chosen == meaning
            asked += 1
            if chosen != meaning:
                misses.append(f"{word} -> {chosen} ({meaning})")
    return right, asked, misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrained", default=PACKAGED_MINILM, help="text model (folder or id)")
    args = parser.parse_args()
    encoder = TextEncoder(TextConfig(pretrained=args.pretrained))
    colours = {c: c for c in COMPOSITIONAL.colours}
    shapes = {s: TRAIN_NOUNS[s][0] for s in COMPOSITIONAL.shapes if s in TRAIN_NOUNS}
    for noun in ("cube", "ball"):
        known = {c: TEMPLATE.format(colour=word, noun=noun) for c, word in colours.items()}
        probe = TEMPLATE.format(colour="{word}", noun=noun)
        right, asked, misses = nearest_share(encoder, known, probe, HELD_OUT_COLOURS)
        print(
            f"colour words (with '{noun}'): {right}/{asked} nearest their colour "
            f"(chance {1 / len(known):.0%}); missed: {', '.join(misses)}"
        )
    known = {s: TEMPLATE.format(colour="red", noun=word) for s, word in shapes.items()}
    probe = TEMPLATE.format(colour="red", noun="{word}")
    right, asked, misses = nearest_share(encoder, known, probe, HELD_OUT_NOUNS)
    print(
        f"object nouns: {right}/{asked} nearest their shape (chance {1 / len(known):.0%}); "
        f"missed: {', '.join(misses)}"
    )


if __name__ == "__main__":
    main()
