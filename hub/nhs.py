"""NHS number checks (modulus 11)."""

WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None when no valid number has them."""
    total = sum(int(d) * w for d, w in zip(first_nine, WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def nhs_number_problem(value: str) -> str | None:
    """Why `value` is not a valid NHS number, or None when it is."""
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return "NHS number must be ten digits"
    expected = check_digit(value[:9])
    if expected is None or expected != int(value[9]):
        return "NHS number check digit does not match"
    return None


def is_valid(value: str) -> bool:
    return nhs_number_problem(value) is None
