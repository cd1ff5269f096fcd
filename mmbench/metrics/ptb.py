"""PTB tokenisation exactly as pycocoevalcap 1.2 does it, in pure Python (or through its jar).

pycocoevalcap runs Stanford CoreNLP 3.4.1's ``PTBTokenizer -preserveLines -lowerCase`` on all
references (one JVM call) and all predictions (another), splits each output line on ``" "``
and drops the tokens in :data:`PUNCTUATION`.  Here the jar's lexer is re-implemented: a
longest-match scanner with the rules of CoreNLP's ``PTBLexer.flex`` in their order, for the
options that command line sets (PTB3 escaping, LaTeX quotes, no slash/asterisk escaping,
newlines as tokens), plus the character classes baked into the jar (measured by probing it:
Unicode 6.0 letters and digits, JFlex's caseless matching of ``İ ı ſ K``) and Java's
``toLowerCase(Locale.ENGLISH)``.  Nearly all captions are plain (words, numbers, hyphens,
clitics, commas, a final period); those take a whole-line shortcut whose answer is known.
Checked against the jar on 7,500 adversarial strings and all 1000-image COCO captions
(``tests/data/captioning``).  This file is longer than mmbench's usual 400 lines because it
carries a port of a 1,078-line lexer specification and its Unicode tables.

    >>> ptb_tokenize("A dog's (red) toy, can't U.S. 1 1/2 cups...")
    "a dog 's -lrb- red -rrb- toy ca n't u.s. 1\\xa01/2 cups"

What the official pipeline does, and so does this:

* Brackets become ``-lrb-``, ``-rrb-``, ... *after* lower-casing, so they survive the
  filter (which lists ``-LRB-``).  A few tokens hold a no-break space (``1\xa01/2``, phone
  numbers, SGML tags): ``str.split()`` (BLEU, CIDEr) splits there, ``split(" ")`` (ROUGE-L)
  does not.
* Emoji and other characters outside the BMP are dropped (as each half of their UTF-16
  pair is), except inside URL and e-mail tokens; so are characters the lexer does not know.
* A line's tokens can depend on the next line (``"plan I."`` gives ``i`` before a line
  starting ``"The "``, ``i.`` at the end of the input), so captions are lexed as one
  document, like one jar call; :func:`tokenize_documents` reproduces separate calls.

Deliberate difference: the official wrapper only replaces ``"\n"``, so a caption holding
``\r``, ``\v``, ``\f``, U+2028 or U+2029 (the other characters the lexer reads as line
breaks) shifts every later caption onto the wrong image.  Both backends here replace those
by spaces first.  (U+0085 is read as a Windows-1252 ellipsis and ``\x1c``-``\x1e`` are
dropped as unknown characters, so they shift nothing and are left alone.)  Lone surrogates,
which the official wrapper cannot even write, become U+FFFD (dropped).

Approximations (no difference found on the test corpus): Java's word boundaries, used to
decide whether a capital sigma lower-cases to a final sigma, and Java's ``isUpperCase``
(Python's ``Lu`` plus ``Other_Uppercase``; only decides whether an abbreviation such as
``etc.`` also yields a ``.`` token, which the filter drops).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from pathlib import Path
from typing import Callable, Sequence

from mmbench.metrics import java as _java

__all__ = ["PUNCTUATION", "ptb_tokenize", "tokenize_captions", "tokenize_documents", "java_status",
           "ptb_raw_tokens"]

#: The tokens pycocoevalcap's PTBTokenizer wrapper removes after tokenising (case-sensitive).
PUNCTUATION: frozenset[str] = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"])

_JAR_CMD = ("edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase")

# Characters the jar reads as a line break (and that therefore shift captions).
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\u2028\u2029]")
_OTHER_BREAKS = re.compile("[\r\x0b\x0c\u2028\u2029]")
_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def java_status() -> tuple[bool, str | None]:
    """``(available, reason_if_not)`` for Java; cached; never raises."""
    return _java.java_status()


def _prepare(text: str, *, for_java: bool = False) -> str:
    """Line breaks to spaces, lone surrogates to U+FFFD; for the scanner, astral characters to the
    two UTF-16 code units the jar sees (put back together in the output by :func:`_lower`)."""
    return _utf16(_LINE_BREAKS.sub(" ", text), for_java)


def _document(texts: Sequence[str], for_java: bool = False) -> str:
    """``texts`` prepared and joined by newlines, one line each."""
    doc = "\n".join(texts)
    if doc.count("\n") != len(texts) - 1:  # a caption holds a newline: a space, so that captions keep their lines
        doc = "\n".join([t.replace("\n", " ") for t in texts])
    if _OTHER_BREAKS.search(doc):
        doc = _OTHER_BREAKS.sub(" ", doc)
    return _utf16(doc, for_java)


def _utf16(text: str, for_java: bool) -> str:
    if text.isascii():  # O(1) for a str: the common case needs no scan
        return text
    if _SURROGATE.search(text):  # the official wrapper cannot even write these
        text = _SURROGATE.sub("\ufffd", text)
    if not for_java and _ASTRAL.search(text):
        text = _ASTRAL.sub(lambda m: _pair(m.group()), text)
    return text


def _pair(c: str) -> str:
    cp = ord(c) - 0x10000
    return chr(0xD800 + (cp >> 10)) + chr(0xDC00 + (cp & 0x3FF))


def _check_texts(texts: Sequence[str], what: str = "caption") -> None:
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"{what} {i} is {type(t).__name__}, not str")


# ---------------------------------------------------------------------------------------------
# Character classes.  [:letter:] and [:digit:] are the JFlex classes compiled into the jar
# (Java's Character.isLetter / isDigit of Unicode 6.0, BMP only), measured by probing the jar
# with every BMP character; they differ from today's unicodedata for ~80 later additions.
_LETTER_RANGES = """
0041-005A 0061-007A 00AA 00B5 00BA 00C0-00D6 00D8-00F6 00F8-02C1 02C6-02D1 02E0-02E4 02EC 02EE 0370-0374 0376-0377
037A-037D 0386 0388-038A 038C 038E-03A1 03A3-03F5 03F7-0481 048A-0527 0531-0556 0559 0561-0587 05D0-05EA 05F0-05F2
0620-064A 066E-066F 0671-06D3 06D5 06E5-06E6 06EE-06EF 06FA-06FC 06FF 0710 0712-072F 074D-07A5 07B1 07CA-07EA
07F4-07F5 07FA 0800-0815 081A 0824 0828 0840-0858 08A0 08A2-08AC 0904-0939 093D 0950 0958-0961 0971-0977 0979-097F
0985-098C 098F-0990 0993-09A8 09AA-09B0 09B2 09B6-09B9 09BD 09CE 09DC-09DD 09DF-09E1 09F0-09F1 0A05-0A0A 0A0F-0A10
0A13-0A28 0A2A-0A30 0A32-0A33 0A35-0A36 0A38-0A39 0A59-0A5C 0A5E 0A72-0A74 0A85-0A8D 0A8F-0A91 0A93-0AA8 0AAA-0AB0
0AB2-0AB3 0AB5-0AB9 0ABD 0AD0 0AE0-0AE1 0B05-0B0C 0B0F-0B10 0B13-0B28 0B2A-0B30 0B32-0B33 0B35-0B39 0B3D 0B5C-0B5D
0B5F-0B61 0B71 0B83 0B85-0B8A 0B8E-0B90 0B92-0B95 0B99-0B9A 0B9C 0B9E-0B9F 0BA3-0BA4 0BA8-0BAA 0BAE-0BB9 0BD0
0C05-0C0C 0C0E-0C10 0C12-0C28 0C2A-0C33 0C35-0C39 0C3D 0C58-0C59 0C60-0C61 0C85-0C8C 0C8E-0C90 0C92-0CA8 0CAA-0CB3
0CB5-0CB9 0CBD 0CDE 0CE0-0CE1 0CF1-0CF2 0D05-0D0C 0D0E-0D10 0D12-0D3A 0D3D 0D4E 0D60-0D61 0D7A-0D7F 0D85-0D96
0D9A-0DB1 0DB3-0DBB 0DBD 0DC0-0DC6 0E01-0E30 0E32-0E33 0E40-0E46 0E81-0E82 0E84 0E87-0E88 0E8A 0E8D 0E94-0E97
0E99-0E9F 0EA1-0EA3 0EA5 0EA7 0EAA-0EAB 0EAD-0EB0 0EB2-0EB3 0EBD 0EC0-0EC4 0EC6 0EDC-0EDF 0F00 0F40-0F47 0F49-0F6C
0F88-0F8C 1000-102A 103F 1050-1055 105A-105D 1061 1065-1066 106E-1070 1075-1081 108E 10A0-10C5 10C7 10CD 10D0-10FA
10FC-1248 124A-124D 1250-1256 1258 125A-125D 1260-1288 128A-128D 1290-12B0 12B2-12B5 12B8-12BE 12C0 12C2-12C5
12C8-12D6 12D8-1310 1312-1315 1318-135A 1380-138F 13A0-13F4 1401-166C 166F-167F 1681-169A 16A0-16EA 1700-170C
170E-1711 1720-1731 1740-1751 1760-176C 176E-1770 1780-17B3 17D7 17DC 1820-1877 1880-18A8 18AA 18B0-18F5 1900-191C
1950-196D 1970-1974 1980-19AB 19C1-19C7 1A00-1A16 1A20-1A54 1AA7 1B05-1B33 1B45-1B4B 1B83-1BA0 1BAE-1BAF 1BBA-1BE5
1C00-1C23 1C4D-1C4F 1C5A-1C7D 1CE9-1CEC 1CEE-1CF1 1CF5-1CF6 1D00-1DBF 1E00-1F15 1F18-1F1D 1F20-1F45 1F48-1F4D
1F50-1F57 1F59 1F5B 1F5D 1F5F-1F7D 1F80-1FB4 1FB6-1FBC 1FBE 1FC2-1FC4 1FC6-1FCC 1FD0-1FD3 1FD6-1FDB 1FE0-1FEC
1FF2-1FF4 1FF6-1FFC 2071 207F 2090-209C 2102 2107 210A-2113 2115 2119-211D 2124 2126 2128 212A-212D 212F-2139
213C-213F 2145-2149 214E 2183-2184 2C00-2C2E 2C30-2C5E 2C60-2CE4 2CEB-2CEE 2CF2-2CF3 2D00-2D25 2D27 2D2D 2D30-2D67
2D6F 2D80-2D96 2DA0-2DA6 2DA8-2DAE 2DB0-2DB6 2DB8-2DBE 2DC0-2DC6 2DC8-2DCE 2DD0-2DD6 2DD8-2DDE 2E2F 3005-3006
3031-3035 303B-303C 3041-3096 309D-309F 30A1-30FA 30FC-30FF 3105-312D 3131-318E 31A0-31BA 31F0-31FF 3400-4DB5
4E00-9FCC A000-A48C A4D0-A4FD A500-A60C A610-A61F A62A-A62B A640-A66E A67F-A697 A6A0-A6E5 A717-A71F A722-A788
A78B-A78E A790-A793 A7A0-A7AA A7F8-A801 A803-A805 A807-A80A A80C-A822 A840-A873 A882-A8B3 A8F2-A8F7 A8FB A90A-A925
A930-A946 A960-A97C A984-A9B2 A9CF AA00-AA28 AA40-AA42 AA44-AA4B AA60-AA76 AA7A AA80-AAAF AAB1 AAB5-AAB6 AAB9-AABD
AAC0 AAC2 AADB-AADD AAE0-AAEA AAF2-AAF4 AB01-AB06 AB09-AB0E AB11-AB16 AB20-AB26 AB28-AB2E ABC0-ABE2 AC00-D7A3
D7B0-D7C6 D7CB-D7FB F900-FA6D FA70-FAD9 FB00-FB06 FB13-FB17 FB1D FB1F-FB28 FB2A-FB36 FB38-FB3C FB3E FB40-FB41
FB43-FB44 FB46-FBB1 FBD3-FD3D FD50-FD8F FD92-FDC7 FDF0-FDFB FE70-FE74 FE76-FEFC FF21-FF3A FF41-FF5A FF66-FFBE
FFC2-FFC7 FFCA-FFCF FFD2-FFD7 FFDA-FFDC
"""
_DIGIT_RANGES = """
0030-0039 0660-0669 06F0-06F9 07C0-07C9 0966-096F 09E6-09EF 0A66-0A6F 0AE6-0AEF 0B66-0B6F 0BE6-0BEF 0C66-0C6F
0CE6-0CEF 0D66-0D6F 0E50-0E59 0ED0-0ED9 0F20-0F29 1040-1049 1090-1099 17E0-17E9 1810-1819 1946-194F 19D0-19D9
1A80-1A89 1A90-1A99 1B50-1B59 1BB0-1BB9 1C40-1C49 1C50-1C59 A620-A629 A8D0-A8D9 A900-A909 A9D0-A9D9 AA50-AA59
ABF0-ABF9 FF10-FF19
"""
_LETTER_EXTRA_RANGES = """
00AD 02C2-02C5 02D2-02DF 02E5-02EB 02ED 02EF-036F 0375 0378-0379 0384-0385 03F6 0483-0487 055A-055F 0591-05BD 05BF
05C1-05C2 05C4-05C5 05C7 0615-061A 064B-065E 0670 06D6-06E4 06E7-06ED 06FD-06FE 070F 0711 0730-074C 07A6-07B0
07EB-07F3 0900-0903 093C 093E-094E 0951-0955 0962-0963 0981-0983 09BC 09BE-09C4 09C7-09C8 09CB-09CD 09D7 09E2-09E3
0A01-0A03 0A3C 0A3E-0A4F 0A81-0A83 0ABC 0ABE-0ACF 0B82 0BBE-0BC2 0BC6-0BC8 0BCA-0BCD 0C01-0C03 0C3E-0C56 0D3E-0D44
0D46-0D48 0E31 0E34-0E3A 0E47-0E4E 0EB1 0EB4-0EBC 0EC8-0ECD
"""


def _chars(*tables: str) -> set[str]:
    """The characters of hex range tables."""
    out: set[str] = set()
    for table in tables:
        for item in table.split():
            lo, _, hi = item.partition("-")
            out.update(map(chr, range(int(lo, 16), int(hi or lo, 16) + 1)))
    return out


def _class_of(chars: set[str]) -> str:
    """A regex character class for a set of characters."""
    cps = sorted(map(ord, chars))
    parts, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(re.escape(chr(cps[i])) + (f"-{re.escape(chr(cps[j]))}" if j > i else ""))
        i = j + 1
    return "[" + "".join(parts) + "]"


def _atom(exact: set[str], category: str, python: set[str]) -> str:
    """A regex atom for exactly the characters ``exact``: the class ``category`` (whose members in
    this Python are ``python``) minus and plus the differences.

    Much cheaper to compile than a class of hundreds of ranges (which ``re`` expands into a
    65,536-entry table for every occurrence), and exact whatever Python's Unicode version.
    """
    minus, plus = python - exact, exact - python
    atom = (f"(?!{_class_of(minus)})" if minus else "") + category
    return f"(?:{atom}|{_class_of(plus)})" if plus else f"(?:{atom})"


# JFlex's %caseless also matches the characters whose (Java, one-char) case mapping is the letter.
_CASELESS_EXTRA = {"i": "\u0130\u0131", "s": "\u017f", "k": "\u212a"}


def _ci(word: str) -> str:
    """A literal matched caselessly, the way JFlex's %caseless treats literals (not classes).

    For ASCII letters Python's ``(?i:...)`` matches exactly the same characters (the letter, its
    other case and :data:`_CASELESS_EXTRA`; tests/test_ptb_tokenizer.py checks every BMP
    character), and compiles about 10x faster than a class per letter (``[Ss\u017f]``), which
    matters for the long abbreviation lists: their rules are compiled on a process's first
    caption that needs the scanner.
    """
    if not word.isascii():
        raise ValueError(f"_ci is exact for ASCII literals only: {word!r}")
    return f"(?i:{re.escape(word)})" if any(c.isalpha() for c in word) else re.escape(word)


def _words(spec: str) -> str:
    """Alternation of caseless literals, longest first; a leading '^' keeps the first letter's case."""
    alts = []
    for w in spec.split():
        alts.append(re.escape(w[1]) + _ci(w[2:]) if w.startswith("^") else _ci(w))
    return "(?:" + "|".join(sorted(alts, key=len, reverse=True)) + ")"


# Stand-ins for one character of [:letter:], of LETTER (letters plus marks) and of [:digit:];
# replaced by real atoms (see _atom) when a rule is compiled.
_SI_L, _SI_LX, _SI_D = "\ue000", "\ue001", "\ue002"
LETTER1 = _SI_L
LETDIG1 = f"(?:{_SI_L}|{_SI_D})"
DIGIT = _SI_D
SPLET = rf"&[aeiouAEIOU](?:{_ci('acute')}|{_ci('grave')}|{_ci('uml')});"
LETTER = rf"(?:{_SI_LX}|{SPLET})"
LD = rf"(?:{_SI_LX}|{_SI_D}|{SPLET})"
WORD = rf"{LETTER}{LD}*(?:[.!?]{LETTER}{LD}*)*"
SPACE = "[ \t\u00a0\u2000-\u200a\u3000]"
NEWLINE = "(?:\r\n?|[\n\u2028\u2029\x0b\x0c\x85])"
SPACENL = f"(?:{SPACE}|{NEWLINE})"
_NAME = r"[A-Za-z][A-Za-z0-9_:.\-]*"
SGML = (rf"<(?:[!?][A-Za-z\-][^>\r\n]*|{_NAME}(?:[ ]+(?:{_NAME}[ ]*=[ ]*(?:'[^']*'|\"[^\"]*\")|{_NAME}))*"
        rf"[ ]*/?|/{_NAME})[ ]*>")
NUM = rf"(?:{DIGIT}*(?:[.:,\u00ad\u066b\u066c]{DIGIT}+)+|{DIGIT}+)"
APOS = rf"(?:['\u0092\u2019]|{_ci('&apos;')})"
APOSETC = rf"(?:['\u0092\u2019`\u0091\u2018\u201b]|{_ci('&apos;')})"
HYPHEN = "[-_\u058a\u2010\u2011]"
SPAMP = _ci("&amp;")
_THINGPART = rf"(?:[dDoOlL]{APOSETC}{LETDIG1})?{LETDIG1}+"
THING = rf"{_THINGPART}(?:{HYPHEN}{_THINGPART})*"
THINGA = rf"[A-Z]+(?:(?:[+&]|{SPAMP})[A-Z]+)+"
_ACRO_SPECIAL = (rf"(?:{_words('Canada Sino Korean EU Japan non')}-{_ci('U.S')}"
                 rf"|{_ci('U.S.-')}(?:{_ci('U.S.S.R')}|{_ci('U.K')}))")
ACRO_ALTS = (r"[A-Za-z](?:\.[A-Za-z])*", _ACRO_SPECIAL)
ACRO2 = rf"(?:[A-Za-z](?:\.[A-Za-z])+|{_ACRO_SPECIAL})"
HTHING = rf"[A-Za-z0-9][A-Za-z0-9.,\u00ad]*(?:-(?:{ACRO2}\.|[A-Za-z0-9\u00ad]+))+"
REDAUX = rf"{APOS}(?:[msdMSD]|{_ci('re')}|{_ci('ve')}|{_ci('ll')})"
SREDAUX = rf"[nN]{APOSETC}[tT]"
_NOURL = " \t\n\f\r\"<>|(){}"
_URL_END = rf"[^{re.escape(_NOURL)}.!?,\-]"
_URL_PATH = rf"(?:/[^{re.escape(_NOURL[:-2])}]+{_URL_END})?"
_ABBREV1_LIST = (  # "^" keeps the first letter's case
    "Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Mon Tue Tues Wed Thu Thurs Fri Ala Ariz ^Az ^Ark Calif Colo "
    "Conn Ct Dak ^Del Fla Ga ^Ill Ind Kan Kans Ky ^La ^Mass Md Mich Minn ^Miss Mo Mont Neb Nev Okla ^Ore ^Pa Penn "
    "Tenn ^Tex Va Vt ^Wash Wis Wisc Wyo Inc Co Cos Corp Ltd Plc Rt Bancorp Bhd Assn Univ Intl Sys tel est ext sq "
    "Jr Sr Bros Blvd Rd Esq etc al seq Bldg")
_ABBREV4_LIST = (
    "Mr Mrs Ms ^Miss Dr Drs Prof Profs Sen Sens Rep Reps Atty Attys Lt Col Gen Messrs Gov Govs Adm Rev Maj Sgt "
    "Cpl Pvt Capt St Ste Ave Pres Lieut Hon Brig Cmdr Comdr Pfc Spc Supt Supts Det Mt Ft Adj Adv Asst Assoc Ens "
    "Insp Mlle Mme Msgr Sfc vs Alex Wm Jos Cie cf TREAS Ph Invt Elec Natl Dept")
_ABBREV3_LIST = "ca fig figs prop no nos art bldg pp op"
_ABBREV1_WORDS = (_words(_ABBREV1_LIST) + rf"|{_ci('P')}{_ci('p')}?{_ci('t')}[ye]{_ci('s')}?"
                  rf"|(?:{_ci('Ed')}|{_ci('Ph')})\.{_ci('D')}")
ABBREV1 = rf"(?:{_ABBREV1_WORDS})\."
_ABBREV4_WORDS = f"(?:{_words(_ABBREV4_LIST)}|{_ci('a.k.a')}|{_ci('M')}[ft]{_ci('g')})"
ABBREV4_ALTS = (_ABBREV4_WORDS, *ACRO_ALTS)
ABBREV3 = rf"{_words(_ABBREV3_LIST)}\."
# Lower-cased superset of the letters-only words some rule treats specially before a final period.
_ABBREV_LOWER = frozenset(
    w.strip("^").lower() for w in f"{_ABBREV1_LIST} {_ABBREV4_LIST} {_ABBREV3_LIST} co pt".split()) | frozenset(
    a + t + b for a in ("p", "pp") for t in "ey" for b in ("", "s")) | frozenset(["pty", "mfg", "mtg"])
_ACRONYM_NEXT = "(?:" + "|".join(sorted(
    (re.escape(w[0]) + _ci(w[1:]) for w in (
        "About According Additionally After An A As At But Earlier He Her Here However If In It Last Many More "
        "Mr. Ms. Now Once One Other Our She Since So Some Such That The Their Then There These They This We "
        "When While What Yet You").split()), key=len, reverse=True)) + f"|{SGML})"
PHONE = (r"(?:\([0-9]{2,3}\)[ \u00a0]?|(?:\+\+?)?(?:[0-9]{2,4}[\- \u00a0])?[0-9]{2,4}[\- \u00a0])"
         r"[0-9]{3,4}[\- \u00a0]?[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}")
_SMILE_SIDE = r"[\-\^x=~<>']"
_FILE_EXT = _words("bat bmp c class cgi cpp dll doc docx exe gif gz h htm html jar java jpeg jpg mov mp3 pdf php pl "
                   "png ppt ps py sql tar txt wav x xml zip")
INSENTP = "[,;:\u3001]"
QUOTE_CHARS = "[`\u2018\u2019\u201a\u201b\u201c\u201d\u0091\u0092\u0093\u0094\u201e\u201f\u2039\u203a\u00ab\u00bb]"
MISCSYMBOL = ("[+%&~^|\\\\\u00a6-\u00a9\u00ac\u00ae\u00af\u00b0-\u00ba\u00d7\u00f7\u0387\u05be\u05c0\u05c3\u05c6"
              "\u05f3\u05f4\u0600-\u0603\u0606-\u060a\u060c\u0614\u061b\u061e\u066a\u066d\u0703-\u070d"
              "\u07f6-\u07f8\u0964\u0965\u0e4f\u1fbd\u2016\u2017\u2020-\u2023\u2030-\u2038\u203b\u203e-\u2042"
              "\u2044\u207a-\u207f\u208a-\u208e\u2100-\u214f\u2190-\u21ff\u2200-\u2bff\u3012\u30fb"
              "\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")

# ---------------------------------------------------------------------------------------------
# Actions: text -> (token or None, characters consumed).  A token of None emits nothing.
_NL = "\n"


def _soft(text: str) -> str:  # PTBLexer drops soft hyphens inside words and numbers
    if "\u00ad" not in text:
        return text
    return text.replace("\u00ad", "") or "-"


_AMP = re.compile("(?i:&amp;)")
_QUOTE_MAPS = {
    flag: [(re.compile("&apos;|'"), "`" if flag else "'"), (re.compile('"|&quot;'), "``" if flag else "''"),
           (re.compile("[\u0091\u2018\u201b\u2039]"), "`"), (re.compile("[\u0092\u2019\u203a]"), "'"),
           (re.compile("[\u0093\u201c\u00ab]"), "``"), (re.compile("[\u0094\u201d\u00bb]"), "''")]
    for flag in (True, False)}
_FRACTIONS = {"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3"}
_CURRENCY = re.compile("[\u00a2\u00a3\u0080\u00a4\u20a0\u20ac]")
_CURRENCY_MAP = {"\u00a2": "cents", "\u00a3": "#"}


def _quotes(left: bool) -> Callable[[str], tuple[str, int]]:
    def act(text: str) -> tuple[str, int]:
        out = text
        for pat, rep in _QUOTE_MAPS[left]:
            out = pat.sub(rep, out)
        return out, len(text)
    return act


def _map(fn: Callable[[str], str | None]) -> Callable[[str], tuple[str | None, int]]:
    return lambda text: (fn(text), len(text))


def _pushback(n: int) -> Callable[[str], tuple[str, int]]:
    return lambda text: (text[:-n], len(text) - n)


def _acronym(text: str) -> tuple[str, int]:
    if len(text) == 2:  # "I." before "The": the letter now, the period next
        return text[:1], 1
    return text, len(text) - 1  # "U.S." now and a period again next


def _parens(text: str) -> str:
    return text.replace("(", "-LRB-").replace(")", "-RRB-")


_TEXT = _map(lambda t: t)
_SOFT = _map(_soft)
_AMPN = _map(lambda t: _AMP.sub("&", t))
_NBSP = _map(lambda t: t.replace(" ", "\u00a0"))
_SKIP = _map(lambda t: None)


def _redup(text: str) -> tuple[str, int]:  # an abbreviation ending a sentence: "etc." now, "." next
    return text, len(text) - 1


def _const(value: str | None) -> Callable[[str], tuple[str | None, int]]:
    return lambda text: (value, len(text))


class _Rule:
    """One lexer rule: alternative heads (the token), an optional trailing context, an action.

    ``search`` > 0: Python's first match may not be the longest; look this far for a longer
    one.  Patterns are compiled on first use (all of them take about 0.05 s).
    """

    __slots__ = ("heads", "tail", "action", "search", "alts")

    def __init__(self, heads: str | Sequence[str], action: Callable[[str], tuple[str | None, int]],
                 tail: str | None = None, search: int = 0) -> None:
        self.heads = (heads,) if isinstance(heads, str) else tuple(heads)
        self.tail, self.action, self.search = tail, action, search
        self.alts: tuple[re.Pattern[str], ...] = ()

    def compile(self) -> tuple[re.Pattern[str], ...]:
        atoms = _atoms()
        pats = (f"(?P<h>{h})(?:{self.tail})" if self.tail is not None else f"(?:{h})" for h in self.heads)
        self.alts = tuple(re.compile(_STAND_IN.sub(lambda m: atoms[m.group()], p)) for p in pats)
        return self.alts


_STAND_IN = re.compile(f"[{_SI_L}{_SI_LX}{_SI_D}]")


#: _atoms() for one Python Unicode database, stored so that a process does not scan the whole
#: BMP (0.05 s) on its first caption; used only when the Unicode version and the range tables
#: match (tests/test_ptb_tokenizer.py derives it again and compares).
_ATOMS_FILE = Path(__file__).with_name("_ptb_atoms.json")


def _atoms_key() -> dict[str, str]:
    tables = "\x1f".join((_LETTER_RANGES, _LETTER_EXTRA_RANGES, _DIGIT_RANGES))
    return {"unidata_version": unicodedata.unidata_version,
            "tables_sha256": hashlib.sha256(tables.encode()).hexdigest()}


@functools.lru_cache(maxsize=1)
def _atoms() -> dict[str, str]:
    try:
        stored = json.loads(_ATOMS_FILE.read_text(encoding="utf-8"))
        if {k: stored.get(k) for k in ("unidata_version", "tables_sha256")} == _atoms_key():
            return dict(stored["atoms"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return _derive_atoms()


def _derive_atoms() -> dict[str, str]:
    """The Java-compatible letter and digit atoms, derived from this Python's Unicode database."""
    bmp = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x10000)))
    py_letters, py_digits = set(re.findall(r"[^\W\d_]", bmp)), set(re.findall(r"\d", bmp))
    letters = _chars(_LETTER_RANGES)
    return {_SI_L: _atom(letters, r"[^\W\d_]", py_letters),
            _SI_LX: _atom(letters | _chars(_LETTER_EXTRA_RANGES), r"[^\W\d_]", py_letters),
            _SI_D: _atom(_chars(_DIGIT_RANGES), r"\d", py_digits)}


_rule = _Rule  # short name for the table below


def _upper_class() -> str:
    """Java's isUpperCase over the BMP (Lu plus Other_Uppercase), as a regex class."""
    upper = "".join(c for c in map(chr, range(0x10000)) if unicodedata.category(c) == "Lu")
    return "[" + re.escape(upper) + "\u2160-\u216f\u24b6-\u24cf]"


def _build_rules() -> tuple[_Rule, ...]:
    """The rules of PTBLexer in its order (earlier wins a tie in length).

    A trailing context (JFlex's ``r1/r2``) counts towards the match length but is not consumed.
    """
    return (
        _rule(r"[cC]\+\+", _TEXT),
        _rule(r"[cCfF]#", _TEXT),
        _rule(_ci("cannot"), _pushback(3)),
        _rule(_ci("'twas"), _pushback(3)),
        _rule(_ci("'tis"), _pushback(2)),
        _rule(_words("gonna gotta lemme gimme wanna"), _pushback(2)),
        _rule(SGML, _NBSP, search=400),
        _rule(rf"&(?:{_ci('MD')}|{_ci('mdash')}|{_ci('ndash')});|[\u0096\u0097\u2013\u2014\u2015]", _const("--")),
        _rule(SPAMP, _AMPN),
        _rule(rf"&(?:{_words('HT TL UR LR QC QL QR odq cdq')}|#[0-9]+);", _TEXT),
        _rule(WORD, _SOFT, tail=REDAUX),
        _rule(r"[A-Za-z\u00ad]*[A-MO-Za-mo-z]\u00ad*", _SOFT, tail=SREDAUX),
        _rule(WORD, _SOFT),
        _rule((rf"{APOS}[nN]{APOS}?", rf"[lLdDjJ]{APOS}", rf"{_words('Dunkin somethin ol')}{APOS}",
               rf"{APOS}{_ci('em')}", rf"[A-HJ-XZn]{APOSETC}{LETTER1}{{2}}{LETTER1}*", rf"{APOS}[2-9]0{_ci('s')}",
               rf"{APOS}{_ci('til')}[lL]?", rf"{LETTER1}+[aeiouyAEIOUY]{APOSETC}[aeiouA-Z]{LETTER1}*",
               rf"{APOS}{_ci('cause')}", _ci("cont'd") + r"\.?",
               _words("'twas nor'easter c'mon e'er s'mores ev'ry li'l nat'l"), rf"[oO]{APOSETC}[oO]"), _TEXT),
        _rule(rf"[yY]{APOS}", _TEXT, tail=LETTER1),
        _rule(rf"{_ci('http')}{_ci('s')}?://[^{re.escape(_NOURL)}]+{_URL_END}", _TEXT, search=400),
        _rule((rf"{_ci('www')}\.(?:[^{re.escape(_NOURL)}.!?,]+\.)+[a-zA-Z]{{2,4}}{_URL_PATH}",
               rf"(?:[^{re.escape(_NOURL)}`'.!?,-_$]+\.)+{_words('com net org edu')}{_URL_PATH}"), _TEXT, search=400),
        _rule(rf"(?:{_ci('&lt;')}|<)?[a-zA-Z0-9][^{re.escape(_NOURL)}\u00a0]*@(?:[^{re.escape(_NOURL)}.\u00a0]+\.)*"
              rf"[^{re.escape(_NOURL)}.\u00a0]+(?:{_ci('&gt;')}|>)?", _TEXT, search=400),
        _rule(rf"@[a-zA-Z_][a-zA-Z_0-9]*|#{LETTER}+", _TEXT),
        _rule(REDAUX, _quotes(False), tail="[^A-Za-z]"),
        _rule(SREDAUX, _quotes(False), tail="[^A-Za-z]"),
        _rule(rf"{DIGIT}{{1,2}}[\-/]{DIGIT}{{1,2}}[\-/]{DIGIT}{{2,4}}", _TEXT),
        _rule(rf"[\-+]?{NUM}", _SOFT),
        _rule("[\u207a\u207b\u208a\u208b]?(?:[\u2070\u00b9\u00b2\u00b3\u2074-\u2079]+|[\u2080-\u2089]+)", _TEXT),
        _rule(rf"(?:{DIGIT}{{1,4}}[\- \u00a0])?{DIGIT}{{1,4}}(?:\\?/|\u2044){DIGIT}{{1,4}}", _NBSP, search=16),
        _rule("[\u00bc\u00bd\u00be\u2153-\u215e]", _map(lambda t: _FRACTIONS.get(t, t))),
        _rule(rf"-(?:{_words('RRB LRB RCB LCB RSB LSB')})-|{_ci('C.D.s')}|{_ci('pro-')}|{_ci('anti-')}"
              rf"|{_ci('s')}(?:&|{SPAMP})[pP]-500|{_ci('s')}(?:&|{SPAMP}){_ci('Ls')}|{_ci('Cap')}{APOS}[nN]"
              rf"|[cC]{APOS}{_ci('est')}",
              _AMPN),
        _rule(r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}", _TEXT, search=200),
        _rule(r"[A-Z]*\$|#", _TEXT),
        _rule("[\u00a2\u00a3\u00a4\u00a5\u0080\u20a0\u20ac\u060b\u0e3f\u20a4\uffe0\uffe1\uffe5\uffe6]",
              _map(lambda t: _CURRENCY_MAP.get(t, "$" if _CURRENCY.match(t) else t))),
        _rule(tuple(a + r"\." for a in ACRO_ALTS), _acronym, tail=rf"{SPACENL}+{_ACRONYM_NEXT}{SPACENL}"),
        _rule(ABBREV3, _TEXT, tail=rf"{SPACENL}?{DIGIT}"),
        _rule(rf"(?:{_ci('pt')}[eyEY]|{_ci('co')})\.", _TEXT, tail=rf"{SPACE}{_words('ltd lim')}"),
        _rule(ABBREV1, _redup, tail=rf"{SPACENL}(?:{SPACENL}|{_upper_class()}|{SGML})"),
        _rule(ABBREV1, _TEXT, tail=r"[\s\S]{2}"),
        _rule(ABBREV1, _redup),
        _rule(tuple(a + r"\." for a in ABBREV4_ALTS), _TEXT),
        _rule(ABBREV4_ALTS, _TEXT, tail=SPACE),
        _rule(ACRO_ALTS, _TEXT, tail=SPACENL),
        _rule(rf"{APOS}[0-9][0-9]", _TEXT, tail=SPACENL),
        _rule(rf"{LD}+(?:\.{LD}+)*\.{_FILE_EXT}", _TEXT, tail=rf"{SPACENL}|[.?!,]", search=200),
        _rule(rf"{WORD}\.", _SOFT, tail=INSENTP),
        _rule(PHONE, _map(lambda t: _parens(t.replace(" ", "\u00a0"))), search=24),
        _rule(rf'"|{_ci("&quot;")}', _quotes(True), tail="[A-Za-z0-9$]"),
        _rule(rf'"|{_ci("&quot;")}', _quotes(False)),
        _rule("\x7f", _SKIP),
        _rule(rf"<|{_ci('&lt;')}", _const("<")),
        _rule(rf">|{_ci('&gt;')}", _const(">")),
        _rule(r"[<>]?[:;=][\-o*']?[()DPdpO\\{@|\[\]]", _map(_parens), tail="[^A-Za-z0-9]"),
        _rule((r"[\^x=~<>]\.\[\^[xX]=~<>\]", rf"{_SMILE_SIDE}_{_SMILE_SIDE}", rf"\({_SMILE_SIDE}[_.]?{_SMILE_SIDE}\)",
               r"\([\^x=~<>']-[\^x=~<>'`]\)"), _map(_parens)),
        _rule(r"\{", _const("-LCB-")),
        _rule(r"\}", _const("-RCB-")),
        _rule(r"\[", _const("-LSB-")),
        _rule(r"\]", _const("-RSB-")),
        _rule(r"\(", _const("-LRB-")),
        _rule(r"\)", _const("-RRB-")),
        _rule("-+", _map(lambda t: "--" if 3 <= len(t) <= 4 else t)),
        _rule((r"\.{3,5}", "(?:\\.[ \u00a0]){2,4}\\.", "[\u0085\u2026]"), _const("...")),
        _rule("@+|#+|_+", _TEXT),
        _rule(r"\*+|(?:\\\*){1,3}", _TEXT),
        _rule(INSENTP, _TEXT),
        _rule("[?!]+", _TEXT),
        _rule("[.\u00a1\u00bf\u037e\u0589\u061f\u06d4\u0700-\u0702\u07fa\u3002]", _TEXT),
        _rule("=", _TEXT),
        _rule("/", _TEXT),
        _rule(rf"{HTHING}\.", _SOFT, tail=INSENTP),
        _rule(HTHING, _SOFT),
        _rule(rf"{THING}\.", _TEXT, tail=INSENTP),
        _rule(THING, _TEXT),
        _rule(rf"{THINGA}\.", _AMPN, tail=INSENTP),
        _rule(THINGA, _AMPN),
        _rule("'", _quotes(True), tail="[A-Za-z][^ \t\n\r\u00a0]"),
        _rule(REDAUX, _quotes(False)),
        _rule(SREDAUX, _quotes(False)),
        _rule((APOS, "''", QUOTE_CHARS + "{1,2}"), _quotes(False)),
        _rule("<<|>>", _TEXT),
        _rule(MISCSYMBOL, _TEXT),
        _rule(f"\0|{SPACE}+|[\u200b\u200e\u200f\ufeff]", _SKIP),
        _rule(NEWLINE, _const(_NL)),
        _rule(_ci("&nbsp;"), _SKIP),
        _rule("[^\n]", _SKIP),  # untokenizable: the jar logs a warning and drops it
    )


# ---------------------------------------------------------------------------------------------
# The scanner.  JFlex semantics: at each position the longest match over all rules wins, ties
# go to the earlier rule.  Python's re returns the first match, not the longest, so each rule is
# written so that its first match is its longest, split into alternatives where that is not so,
# or (``search``) checked for longer matches explicitly.
try:  # only used to find which rules can start with a given character (a speed-up)
    import re._parser as _sre
except ImportError:  # Python 3.10
    import sre_parse as _sre  # type: ignore[no-redef]

_CATEGORY_CODES = {"CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s",
                   "CATEGORY_NOT_SPACE": r"\S", "CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W"}


def _class_text(items) -> str:
    """Rebuild a parsed character class ([(op, arg), ...]) as regex text."""
    parts = []
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            parts.insert(0, "^")
        elif name == "LITERAL":
            parts.append(re.escape(chr(av)))
        elif name == "RANGE":
            parts.append(f"{re.escape(chr(av[0]))}-{re.escape(chr(av[1]))}")
        else:
            parts.append(_CATEGORY_CODES[str(av)])  # KeyError: give up on this rule
    return "[" + "".join(parts) + "]"


def _first_chars(items, caseless: bool = False) -> tuple[list[str], bool]:
    """Regex classes for the first character a parsed pattern can match, and whether it can match ""."""
    out: list[str] = []
    for op, av in items:
        name = str(op)
        if name in ("LITERAL", "NOT_LITERAL", "IN"):
            cls = {"LITERAL": lambda: re.escape(chr(av)), "NOT_LITERAL": lambda: f"[^{re.escape(chr(av))}]",
                   "IN": lambda: _class_text(av)}[name]()
            return out + [f"(?i:{cls})" if caseless else cls], False
        if name == "BRANCH":
            subs = [_first_chars(alt, caseless) for alt in av[1]]
            out += [c for sub in subs for c in sub[0]]
            nullable = any(sub[1] for sub in subs)
        elif name == "SUBPATTERN":  # (group, add_flags, del_flags, pattern): (?i:...) from _ci
            sub_caseless = (caseless or bool(av[1] & re.IGNORECASE)) and not av[2] & re.IGNORECASE
            first, nullable = _first_chars(av[-1], sub_caseless)
            out += first
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            first, nullable = _first_chars(av[2], caseless)
            out += first
            nullable = nullable or av[0] == 0
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            nullable = True
        else:
            raise ValueError(name)
        if not nullable:
            return out, False
    return out, True


def _starter(rule: _Rule) -> re.Pattern[str] | None:
    """The characters ``rule`` can start with (None: unknown, try it everywhere)."""
    try:
        firsts = [_head_first(head) for head in rule.heads]
    except Exception:  # noqa: BLE001 - any surprise just disables the shortcut for this rule
        return None
    if any(nullable for _, nullable in firsts):
        return None
    return re.compile("|".join(c for classes, _ in firsts for c in classes))


@functools.lru_cache(maxsize=None)
def _head_first(head: str) -> tuple[list[str], bool]:  # several rules share a head
    return _first_chars(_sre.parse(head).data)


class _Scanner:
    """The rules, and for each character seen so far the rules that can start with it."""

    def __init__(self) -> None:
        self.rules = _build_rules()
        self.starters = tuple(_starter(rule) for rule in self.rules)
        self.big = tuple((stand_in, re.compile(atom)) for stand_in, atom in _atoms().items())
        self.by_char: dict[str, tuple[_Rule, ...]] = {}

    def rules_for(self, c: str) -> tuple[_Rule, ...]:
        """The rules whose match can start with ``c``, in order."""
        rules = self.by_char.get(c)
        if rules is None:
            reps = [c] + [stand_in for stand_in, cls in self.big if cls.match(c)]
            rules = tuple(r for r, st in zip(self.rules, self.starters)
                          if st is None or any(st.fullmatch(x) for x in reps))
            self.by_char[c] = rules
        return rules


@functools.lru_cache(maxsize=1)
def _scanner() -> _Scanner:
    return _Scanner()


def _longest(rule: _Rule, s: str, pos: int) -> tuple[int, int]:
    """(length incl. trailing context, token length) of ``rule``'s longest match at ``pos``, or (-1, 0)."""
    best_total, best_head = -1, 0
    for pat in rule.alts or rule.compile():
        m = pat.match(s, pos)
        if m is None:
            continue
        end = m.end()
        if rule.search:
            for stop in range(min(len(s), pos + rule.search), end, -1):
                m2 = pat.fullmatch(s, pos, stop)
                if m2 is not None:
                    m, end = m2, stop
                    break
        if end - pos > best_total:
            best_total, best_head = end - pos, (m.end("h") - pos if rule.tail is not None else end - pos)
    return best_total, best_head


# Whole-line shortcut for the plain captions that make up nearly all caption data: words, numbers
# and hyphenated words, possibly with 's/'re/'ve/'ll/'m/'d or n't, commas, and periods after words.
# For these the scanner's answer is known (the chunks, with clitics split off and punctuation
# dropped), except for the cases sent back to the scanner in _simple_line.
_SIMPLE_CHUNK = r"[A-Za-z0-9]+(?:(?:-[A-Za-z0-9]+)+|'(?:[sSmMdDtT]|[rR][eE]|[vV][eE]|[lL][lL]))?"
_SIMPLE_SEP = r"(?: *, +|(?<![0-9]) +|(?<=[0-9]) +(?![0-9]))"  # "555 123 4567" is one (phone) token
# A letters-only word may also end in a period inside the line ("a bowl. a plate": two sentences
# run together, frequent in model output): the scanner splits it off unless the word is an
# abbreviation or a single letter, checked over every such word by _PERIOD_WORD.
_SIMPLE_LINE = re.compile(
    rf" *(?:{_SIMPLE_CHUNK}{_SIMPLE_SEP}|[A-Za-z]+\. +)*(?:[A-Za-z]+\.|{_SIMPLE_CHUNK}(?: *[,.])?)? *")
_PERIOD_WORD = re.compile(r"(?<![A-Za-z0-9'-])([A-Za-z]+)\.")
# with an apostrophe: letters-only n't words, clitics only after letters or digits without a hyphen
_APOS_CHUNK = r"(?:[A-Za-z]*[A-MO-Za-mo-z][nN]'[tT]|[A-Za-z0-9]+'(?:[sSmMdD]|[rR][eE]|[vV][eE]|[lL][lL]))"
_APOS_OK = re.compile(rf"(?:^| ){_APOS_CHUNK}(?=[ ,.]|$)")
_SIMPLE_TOKENS = re.compile(r"[a-z]*[a-mo-z](?=n't)|n't|'(?:[smd]|re|ve|ll)|[a-z0-9]+(?:-[a-z0-9]+)*")
_ASSIMILATIONS = frozenset(["cannot", "gonna", "gotta", "lemme", "gimme", "wanna"])
_EOF_CLITIC = re.compile(r"'[A-Za-z]{2}\Z")
_NO_PUNCT = str.maketrans(",.", "  ")
# Inside the scanner: blanks, and ASCII words, commas and periods that no other rule could extend.
_PLAIN = re.compile(r"[ \t][ \t\u00a0\u2000-\u200a\u3000]*|([A-Za-z]+)(?=,?[ \n]|,?\Z)|(,)(?=[ \n]|\Z)"
                    r"|([A-Za-z]{2,})(?=\.(?:[ \n]|\Z))|(\.)(?=\n|\Z| (?!\.))")


def _simple_line(line: str) -> str | None:
    """The final (filtered, lower-cased) tokenisation of a plain line, or None to use the scanner.

    Plain lines (words, numbers, hyphenated words, clitics, commas and periods after words) make up
    nearly all caption data; for them the scanner's answer is known without running it.
    """
    if _SIMPLE_LINE.fullmatch(line) is None:
        return None
    if "." in line:  # "etc.", "No.", "I." ... before a period need the scanner
        for word in _PERIOD_WORD.findall(line):
            if len(word) == 1 or word.lower() in _ABBREV_LOWER:
                return None
    if "'" in line and (len(_APOS_OK.findall(line)) != line.count("'") or "cont'd" in line.lower()):
        return None  # "cont'd." is one token
    low = line.lower()
    tokens = _SIMPLE_TOKENS.findall(low) if "'" in low else low.translate(_NO_PUNCT).split()
    if not _ASSIMILATIONS.isdisjoint(tokens):
        return None
    return " ".join(tokens)


def _final_sigma(tok: str, i: int) -> bool:
    """Java's rule for a capital sigma: final if a cased letter precedes it in the same word and none follows.

    Java's word boundaries are approximated (measured on the jar's JVM): words join letters,
    marks and digits (not CJK), skip format characters, and join two letters across one of
    ``" ' .`` or a dash or connector (``-``, ``_``, U+2014, ...).
    """
    def cat(j: int) -> str:
        return unicodedata.category(tok[j]) if 0 <= j < len(tok) else "Zs"

    def scan(step: int) -> bool:
        j = i + step
        while 0 <= j < len(tok):
            c, k = tok[j], cat(j)
            if k[0] in "LMN" and not "\u2e80" <= c <= "\ud7ff":
                if k in ("Lu", "Ll", "Lt"):
                    return True
            elif k != "Cf" and not ((c in "\"'." or k in ("Pd", "Pc"))
                                    and cat(j + step)[0] == cat(j - step)[0] == "L"):
                return False
            j += step
        return False
    return scan(-1) and not scan(1)


def _lower(tok: str) -> str:
    """Java's ``toLowerCase(Locale.ENGLISH)``: as Python's, except where a capital sigma becomes final."""
    if _SURROGATE.search(tok):  # a URL or e-mail token holding an astral character
        tok = tok.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if "\u03a3" not in tok:
        return tok.lower()
    return "".join(("\u03c2" if _final_sigma(tok, i) else "\u03c3") if c == "\u03a3" else c.lower()
                   for i, c in enumerate(tok))


def _finish(tokens: list[str]) -> str:
    """pycocoevalcap's post-processing of one output line of the jar."""
    line = " ".join(_lower(t) for t in tokens).rstrip()
    return " ".join(w for w in line.split(" ") if w not in PUNCTUATION)


def _scan_line(s: str, pos: int) -> tuple[list[str], int, bool]:
    """Run the scanner from ``pos`` to the next newline token: (tokens, new position, ended by newline)."""
    rules_for = _scanner().rules_for
    tokens: list[str] = []
    n = len(s)
    while pos < n:
        m = _PLAIN.match(s, pos)  # blanks; ASCII words and commas before a space: no other rule applies
        if m is not None:
            word = m.group(m.lastindex) if m.lastindex else None
            if word is None or (word.lower() not in _ASSIMILATIONS
                                and (m.lastindex != 3 or word.lower() not in _ABBREV_LOWER)):
                if word is not None:
                    tokens.append(word)
                pos = m.end()
                continue
        best_total, best_head, best_rule = -1, 0, None
        for rule in rules_for(s[pos]):
            total, head = _longest(rule, s, pos)
            if total > best_total:
                best_total, best_head, best_rule = total, head, rule
        assert best_rule is not None and best_head > 0
        token, used = best_rule.action(s[pos:pos + best_head])
        pos += used
        if token == _NL:
            return tokens, pos, True
        if token is not None:
            tokens.append(token)
    return tokens, pos, False


def _lex(s: str, *, raw: bool = False) -> list:
    """Tokenise the document ``s`` (PTBLexer with tokenizeNLs), one entry per line.

    Returns the filtered, lower-cased output line for each line of ``s`` (split on newlines
    as pycocoevalcap splits the jar's output); with ``raw``, the unfiltered tokens before
    lower-casing for each output line, always from the scanner.
    """
    out: list = []
    pos, more = 0, True
    if raw:
        while more:
            tokens, pos, more = _scan_line(s, pos)
            out.append(tokens)
        return out
    lines = s.split("\n")
    i, spans, seen = 0, False, {}  # seen: plain lines already done (predictions often repeat)
    while i < len(lines):
        fast = seen.get(lines[i])
        if fast is None:
            fast = seen[lines[i]] = _simple_line(lines[i])
        if fast is not None and i == len(lines) - 1 and _EOF_CLITIC.search(lines[i]):
            fast = None  # at the very end "we've" gives "we ` ve": the quote rule wins there
        if fast is not None:
            out.append(fast)
            pos += len(lines[i]) + 1
            i += 1
            continue
        tokens, end, more = _scan_line(s, pos)
        out.append(_finish(tokens))
        crossed = s.count("\n", pos, end)
        spans = spans or crossed > more
        i = i + crossed if more else len(lines)
        pos = end
    if spans:  # an SGML token spanning lines: the jar prints it as it is
        out = "\n".join(out).split("\n")
    return out


# ---------------------------------------------------------------------------------------------
def ptb_tokenize(text: str) -> str:
    """What pycocoevalcap's PTBTokenizer yields for ONE caption (alone in its call), without Java.

    PTBTokenizer 3.4.1 ``-preserveLines -lowerCase`` tokens, minus :data:`PUNCTUATION`, joined
    by single spaces.  ``""`` for an empty or whitespace-only caption.
    """
    _check_texts([text])
    return _lex(_prepare(text))[0]


def ptb_raw_tokens(text: str) -> list[str]:
    """The jar's tokens for one caption, lower-cased but before the punctuation filter (for debugging)."""
    _check_texts([text])
    return [_lower(t) for t in _lex(_prepare(text), raw=True)[0]]


def tokenize_captions(texts: Sequence[str], backend: str = "python") -> list[str]:
    """Tokenise ``texts`` as ONE call of pycocoevalcap's PTBTokenizer would (one output per text).

    ``backend="python"`` uses the pure-Python scanner; ``"java"`` runs the official
    ``stanford-corenlp-3.4.1.jar`` shipped with pycocoevalcap once for all texts (raises
    :class:`~mmbench.metrics.java.JavaUnavailableError` without Java).  Line breaks are
    replaced by spaces first in both, so that text ``i`` always gives output ``i``.
    """
    return tokenize_documents([texts], backend=backend)[0]


def tokenize_documents(documents: Sequence[Sequence[str]], backend: str = "python") -> list[list[str]]:
    """Tokenise several independent lists of captions (one jar run each in pycocoevalcap) at once.

    pycocoevalcap tokenises references and predictions in two separate calls; since a
    line's tokens can depend on the start of the next line (and the last line sees the end
    of the input), ``tokenize_documents([refs, preds])`` reproduces both calls exactly.
    With ``backend="java"`` all documents go through a single JVM.
    """
    for d, texts in enumerate(documents):
        _check_texts(texts, what=f"document {d}: caption" if len(documents) > 1 else "caption")
    if backend == "python":
        docs = [_document(texts) for texts in documents]
        outs = [_lex(doc) for doc in docs]
    elif backend == "java":
        docs = [_document(texts, for_java=True) for texts in documents]
        outs = [[" ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATION) for line in lines]
                for lines in _java.run_ptb_jar(docs, _JAR_CMD)]
    else:
        raise ValueError(f"unknown PTB tokenizer backend {backend!r}; use 'python' or 'java'")
    for texts, out in zip(documents, outs):
        if len(out) < len(texts):  # cannot happen once line breaks are replaced; never zip silently
            raise RuntimeError(f"PTB tokenizer returned {len(out)} lines for {len(texts)} captions")
    return [out[:len(texts)] for texts, out in zip(documents, outs)]
