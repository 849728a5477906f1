"""The README's data dictionary is the one rendered from the table declarations."""

from pathlib import Path

from lake.dictionary import markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_data_dictionary_matches_the_declarations():
    text = README.read_text()
    start = text.index("-->\n", text.index("<!-- dictionary:start")) + len("-->\n")
    end = text.index("<!-- dictionary:end -->")
    assert text[start:end] == markdown()
