"""XML read a record at a time: the one pull parser behind the streamed XML formats (PubMed XML, EndNote XML,
arXiv OAI-PMH, Zotero RDF).

Lines are fed to `XMLPullParser` and each wanted element is handed on as soon as it closes, then dropped from its
parent, so a 30,000-record PubMed baseline file is never one tree in memory. Entity declarations are refused before
the parser sees them: an internal DTD subset is how "billion laughs" and external-entity files work, and no real
export of these formats has one (PubMed's DOCTYPE names an external DTD, which the parser never fetches).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from xml.etree.ElementTree import Element, XMLPullParser
from xml.etree.ElementTree import ParseError as XMLParseError

from ..errors import ParseError
from .records import MAX_RECORD_CHARS

_BOM = "\ufeff"


def pull_elements(lines: Iterable[str], label: str, wanted: Callable[[Element, int], bool],
                  root_tag: str | None = None) -> Iterator[Element]:
    """Each element `wanted(element, depth)` once it is complete (depth 0 is the root); malformed, truncated or
    hostile XML (entity declarations, a record over MAX_RECORD_CHARS, a lone surrogate) ends in one ParseError line
    naming the line. `root_tag`, when given, must be the root element's tag."""
    parser: XMLPullParser[Element] = XMLPullParser(events=("start", "end"))
    open_elements: list[Element] = []
    size = number = 0
    try:
        for number, raw in enumerate(lines, 1):
            line = raw.rstrip("\r").lstrip(_BOM) if number == 1 else raw.rstrip("\r")
            if "<!ENTITY" in line:
                raise ParseError(f"line {number} declares an XML entity (<!ENTITY): refused, as entity expansion can "
                                 f"blow a small file up to gigabytes; a real {label} export has none")
            size += len(line)
            if size > MAX_RECORD_CHARS:
                raise ParseError(f"a {label} record ending after line {number} is over {MAX_RECORD_CHARS:,} "
                                 "characters: not a real record; export the file again")
            parser.feed(line + "\n")
            for event in parser.read_events():
                element = event[-1]
                if not isinstance(element, Element):  # namespace events carry no element; none are asked for
                    continue
                if event[0] == "start":
                    if not open_elements and root_tag and element.tag != root_tag:
                        raise ParseError(f"not {label} XML: the root element is <{element.tag}>, not <{root_tag}>")
                    open_elements.append(element)
                    continue
                open_elements.pop()
                if wanted(element, len(open_elements)):
                    yield element
                    size = 0
                    if open_elements:
                        open_elements[-1].remove(element)
        parser.close()
    except UnicodeEncodeError:  # a lone surrogate: text that never came from a UTF-8 file
        raise ParseError(f"line {number} holds a character that is not Unicode text (a lone surrogate)") from None
    except XMLParseError as error:
        where = f"line {error.position[0]}" if getattr(error, "position", None) else f"line {number}"
        cut = " (the file looks cut short: export it again)" if "no element found" in str(error) else ""
        raise ParseError(f"malformed {label} XML at {where}: {error}{cut}") from None


def text_of(element: Element | None) -> str | None:
    """An element's whole text, inline markup included ('<i>in vivo</i>', 'CD4<sup>+</sup>', EndNote's
    '<style face="subscript">' runs), spaces collapsed; None when the element is missing or empty."""
    if element is None:
        return None
    return " ".join("".join(element.itertext()).split()) or None
