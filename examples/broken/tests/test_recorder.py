from recorder import home, record


def test_record_counts() -> None:
    assert record("started") >= 1


def test_home_is_absolute() -> None:
    assert home().startswith("/")


def test_wrong_on_purpose() -> None:
    assert record("x") == 0, "this test fails on purpose"
