"""Where personal data is in a text: email addresses, IBANs, payment card numbers and phone numbers.

An IBAN is 2 letters, 2 check digits and 11-30 letters and digits that pass the ISO 13616 mod-97
check; a card number 13-19 digits that pass the Luhn check. Dates and order numbers (5-6 digits,
`A-7781`) are none of these.

The tracker store redacts every message before it saves it, so a hostile message must not stall
it: each finder takes time linear in the text's length. No pattern can backtrack far: each starts
only where a run of its characters starts (a lookbehind) and repeats character classes split by
delimiters they cannot match, or repeats a bounded number of times; the checks (mod 97, Luhn, how
a phone number is grouped) run in Python on what the patterns find.
"""

from __future__ import annotations

import re
import string
from itertools import accumulate
from typing import Iterable, Iterator, List, Optional, Tuple

MASK = "\x00"  # stands in for masked text (a date, an earlier find): neither a digit, a letter nor a separator

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 2 letters, 2 check digits and 11-30 letters and digits, in one piece or in groups of 4 (the last
# may be shorter) in one case; a run of such groups is searched for IBANs in _grouped_ibans. A group
# glued to more (2024-05-01, A-7781) is not one.
IBAN_WHOLE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}[A-Za-z0-9]{11,30}(?![A-Za-z0-9])")
GROUP_END = r"(?![A-Za-z0-9]|[-./][A-Za-z0-9])"
IBAN_GROUPS = re.compile(
    "|".join(
        rf"(?<![A-Za-z0-9]){letter}{{2}}[0-9]{{2}}(?: {alnum}{{4}}{GROUP_END})+(?: {alnum}{{1,3}}{GROUP_END})?"
        for letter, alnum in (("[A-Z]", "[A-Z0-9]"), ("[a-z]", "[a-z0-9]"))
    )
)
# In one piece, or with one separator in groups 4-4-4-4 (and up to 3 more digits) or, American
# Express and Diners Club (starting with 3), 4-6-5 and 4-6-4; no card number starts with 0.
CARD = re.compile(
    r"(?<![0-9])(?:[1-9][0-9]{12,18}|[1-9][0-9]{3}(?P<sep>[ .-])[0-9]{4}(?P=sep)[0-9]{4}(?P=sep)[0-9]{4}"
    r"(?:(?P=sep)[0-9]{1,3})?|3[0-9]{3}(?P<amex>[ .-])[0-9]{6}(?P=amex)[0-9]{4,5})(?![0-9])"
)
# A phone number that says so: +44 ..., (+44) ..., 0044 ..., (555) ..., or a national 0170 ...;
# up to 9 groups of digits, at least 7 digits in all, joined by a space, dot, dash, slash or
# parentheses. Where it ends is decided in _prefixed_phone.
GAP = r"(?:[ ./-]\(?|\)[ ./-]?|\()"
PREFIXED_PHONE = re.compile(rf"(?<![\w+(])(?:\(?\+|\(|(?=0))(?=(?:{GAP}?\d){{7}})\d+(?:{GAP}\d+){{0,8}}")
# A phone number without a prefix is told from order numbers and amounts by its grouping alone:
# 10-15 digits in one piece, or one of these groupings with a single separator throughout.
PLAIN_PHONE = re.compile(
    r"""(?<![\w+(])(?=[1-9])(?:
        \d{10,15}
      | 1(?P<a>[ ./-])\d{3}(?P=a)\d{3}(?P=a)\d{4}                  # 1-555-123-4567
      | \d{3}(?P<b>[ ./-])\d{3}(?P=b)\d{2}(?P=b)\d{2}              # 555 123 45 67
      | \d{3}(?P<c>[ ./-])\d{2}(?P=c)\d{2}(?P=c)\d{2}              # 612 34 56 78
      | \d{3}(?P<d>[ ./-])\d{3}(?P=d)\d{4}                         # 555-123-4567
      | \d{3}(?P<e>[ ./-])\d{4}(?P=e)\d{4}                         # 555 1234 5678
      | \d{2}(?P<f>[ ./-])\d{2}(?P=f)\d{2}(?P=f)\d{2}(?P=f)\d{2}  # 12 34 56 78 90
      | \d{3}(?P<g>[ ./-])\d{4}                                    # 555-1234
    )(?!\d)""",
    re.VERBOSE,
)
# Dates are no phone numbers: 2024-05-01, 01.05.2024, 05/01/2024 (checked in _is_date).
DATE = re.compile(r"(?=\d)(?<!\d)(?:(\d{4})([-./])(\d{1,2})\2(\d{1,2})|(\d{1,2})([-./])(\d{1,2})\6(\d{4}))(?!\d)")
DIGITS_SPLIT = re.compile(r"(\d+)")  # text between, digits, text between, ...
DOUBLED = str.maketrans("0123456789", "0246813579")  # a digit doubled, less 9 when over 9
TEN_TO_THE = [10**power % 97 for power in range(96)]  # mod 97; 10**96 leaves 1 (Fermat)
LETTER_VALUES = str.maketrans({letter: str(value) for value, letter in enumerate(string.ascii_uppercase, 10)})


def luhn_valid(digits: str) -> bool:
    """The checksum every payment card number passes (ASCII digits)."""
    reversed_digits = digits[::-1]
    as_is, doubled = reversed_digits[::2], reversed_digits[1::2].translate(DOUBLED)
    return (sum(as_is.encode()) + sum(doubled.encode()) - 48 * len(digits)) % 10 == 0  # 48 is "0"


def iban_valid(iban: str) -> bool:
    """ISO 13616: with letters read as 10-35 and the country code and check digits moved to the end,
    the number leaves 1 when divided by 97."""
    return int((iban[4:] + iban[:4]).upper().translate(LETTER_VALUES)) % 97 == 1


def emails(text: str) -> Iterator[Tuple[int, int]]:
    return (match.span() for match in EMAIL.finditer(text))


def ibans(text: str) -> List[Tuple[int, int]]:
    whole = [match.span() for match in IBAN_WHOLE.finditer(text) if iban_valid(match.group())]
    return sorted(whole + [span for run in IBAN_GROUPS.finditer(text) for span in _grouped_ibans(run)])


def _grouped_ibans(run: re.Match) -> Iterator[Tuple[int, int]]:
    """From each group that can start an IBAN (2 letters, 2 digits), the longest valid IBAN, as an
    IBAN may be followed by words of 4 letters or follow one. Remainders by 97 of the run's prefixes
    make each try a few operations, so a long run takes linear time."""
    groups = run.group().split(" ")
    numbers = run.group().upper().translate(LETTER_VALUES).split(" ")
    remainders = [0]  # of the number the first k groups make
    for number in numbers:
        remainders.append((remainders[-1] * TEN_TO_THE[len(number) % 96] + int(number)) % 97)
    digits = [0, *accumulate(map(len, numbers))]
    sizes = [0, *accumulate(map(len, groups))]  # letters and digits in the first k groups
    first = 0
    while first < len(groups):
        if len(groups[first]) == 4 and groups[first][:2].isalpha() and groups[first][2:].isdigit():
            head, before, prefix = int(numbers[first]) - 1, remainders[first + 1], digits[first + 1]
            for last in range(min(first + 9, len(groups)), first + 3, -1):  # last group + 1
                if 15 <= sizes[last] - sizes[first] <= 34:
                    account = remainders[last] - before * TEN_TO_THE[(digits[last] - prefix) % 96]
                    if (account * TEN_TO_THE[6] + head) % 97 == 0:  # the head moved to the end: 6 digits
                        yield run.start() + sizes[first] + first, run.start() + sizes[last] + last - 1
                        first = last - 1
                        break
        first += 1


def cards(text: str) -> Iterator[Tuple[int, int]]:
    """After a rejected candidate the search goes on one character later, so a card starting inside
    it is still found; CARD starts only at a group and looks at most 4 groups ahead, so the search
    stays linear."""
    position = 0
    while True:
        match = CARD.search(text, position)
        if match is None:
            return
        span = _card(match)
        if span:
            yield span
        position = span[1] if span else match.start() + 1


def _card(match: re.Match) -> Optional[Tuple[int, int]]:
    """The longest run of the candidate's first groups that passes the Luhn check, so a card number
    written right before another number keeps its own length."""
    separator = match.group("sep") or match.group("amex") or ""
    groups = match.group().split(separator) if separator else [match.group()]
    digits = "".join(groups)
    end, size = len(match.group()), len(digits)
    for group in reversed(groups):
        if size < 13:
            return None
        if size <= 19 and luhn_valid(digits[:size]):
            return match.start(), match.start() + end
        end, size = end - len(group) - len(separator), size - len(group)
    return None


def _is_date(match: re.Match) -> bool:
    """Year 1900-2099 with a month and day: 2024-05-01, 01.05.2024 and 05/01/2024."""
    year, month, day, first, second, last = match.group(1, 3, 4, 5, 7, 8)
    if year:
        return 1900 <= int(year) <= 2099 and 1 <= int(month) <= 12 and 1 <= int(day) <= 31
    low, high = sorted((int(first), int(second)))
    return 1900 <= int(last) <= 2099 and 1 <= low <= 12 and high <= 31


def _prefixed_phone(match: re.Match) -> Optional[Tuple[int, int]]:
    """Where a phone number with a prefix starts and ends, if it is one.

    Groups are added while the number has fewer than 10 digits after its country code, at most 15
    in all; once it has 7, a group of 5 or more digits or one opening a parenthesis starts something
    else (an order number, the next phone). With +/00 or (area code) it needs 7 digits, as a
    national number starting with 0 it needs 9 (01.05.2024 has 8).
    """
    start = match.start()
    parts = DIGITS_SPLIT.split(match.group())
    prefix, groups, gaps = parts[0], parts[1::2], parts[2::2]  # gaps[i] follows groups[i]
    first = groups[0]
    international = "+" in prefix or first.startswith("00")
    if prefix == "(" and not international and not gaps[0].startswith(")"):
        if not first.startswith("0"):
            return None  # "(12345 67890)": parentheses, but no area code in them
        start, prefix = start + 1, ""
    sizes = [len(group) for group in groups]
    sizes[0] -= 2 if first.startswith("00") else 0  # 00 dials out, as + does: not the number's digits
    code = 1 if sizes[0] == 0 else 0  # the country code's group: "+44 20", "0044 20", "00 44 20"
    has_code = international and len(groups) > code + 1 and 1 <= sizes[code] <= 3
    digits = national = 0
    end = position = start + len(prefix)
    for index, (group, size) in enumerate(zip(groups, sizes)):
        if index and (
            national >= 10 or digits + size > 15 or (national >= 7 and (size >= 5 or "(" in gaps[index - 1]))
        ):
            break
        digits += size
        national += 0 if has_code and index == code else size
        end = position + len(group)
        position = end + len(gaps[index])
    needed = 7 if international or prefix == "(" else 9
    return (start, end) if needed <= digits <= 15 else None


def phones(text: str) -> List[Tuple[int, int]]:
    """Phone numbers outside dates, the leftmost first: in 555-123-0456 the 0456 is no national
    number, in 030 123 4567 the 123 4567 is no local one."""
    text = mask(text, [match.span() for match in DATE.finditer(text) if _is_date(match)])
    found: List[Tuple[int, int]] = []
    prefixed, plain = PREFIXED_PHONE.search(text), PLAIN_PHONE.search(text)
    while prefixed or plain:
        if prefixed and (not plain or prefixed.start() <= plain.start()):
            span = _prefixed_phone(prefixed)
            position = span[1] if span else prefixed.start() + 1
        else:
            assert plain is not None  # the loop runs while either is found
            span = plain.span()
            position = span[1]
        if span:
            found.append(span)
        if prefixed and prefixed.start() < position:  # each pattern searched on from where it is due
            prefixed = PREFIXED_PHONE.search(text, position)
        if plain and plain.start() < position:
            plain = PLAIN_PHONE.search(text, position)
    return found


def mask(text: str, spans: Iterable[tuple]) -> str:
    """The text with each span's characters replaced by MASK, so offsets stay."""
    pieces, last = [], 0
    for start, end, *_ in spans:
        pieces += [text[last:start], MASK * (end - start)]
        last = end
    return "".join(pieces) + text[last:] if pieces else text
