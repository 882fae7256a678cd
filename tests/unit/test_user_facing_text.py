"""User-facing text says what a thing does in words a user knows."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# "the seed" named the original system this product implements; a user does not know it.
# The simulator's random seed ("--seed", "the same seed") is a different word and stays.
ORIGINAL_SYSTEM = re.compile(r"\bthe seed\b(?!\s*(=|\)|value|number))|\bseed's\b", re.IGNORECASE)


def user_facing_texts() -> dict[str, str]:
    texts = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        texts[str(path.relative_to(ROOT))] = "\n".join("".join(c["source"]) for c in cells)
    patterns = ("clicklib/**/*.py", "ksql/*.sql", "connect/*.json", "bench/*.py", "README.md", "*/README.md")
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            if "assets" not in path.parts:
                texts[str(path.relative_to(ROOT))] = path.read_text()
    return texts


def test_no_user_facing_text_speaks_of_the_seed():
    texts = user_facing_texts()
    assert len(texts) > 30
    found = [
        f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
        for name, text in texts.items()
        for m in ORIGINAL_SYSTEM.finditer(text)
    ]
    assert found == []


def test_the_pattern_catches_the_original_systems_name_and_spares_the_random_seed():
    assert ORIGINAL_SYSTEM.search("The seed watched its topics in Control Center")
    assert ORIGINAL_SYSTEM.search("as the seed's KSQL editor showed it")
    assert not ORIGINAL_SYSTEM.search("The same seed always gives the same events")
    assert not ORIGINAL_SYSTEM.search("deterministic per seed")
