"""Merging queued retries: one retry covers every change merged into it, and no more than it must."""

from tarifa_rater import handlers


def test_a_tariff_and_an_extension_merge_into_their_reasons_and_the_extension() -> None:
    merged = handlers.merge_waiting(handlers.FOR_TARIFF, handlers.for_extensions("2002"))
    assert merged == handlers.Waiting(reasons=("no_tariff", "unknown_extension"), extensions=("2002",))


def test_a_retry_of_every_waiting_call_absorbs_any_other() -> None:
    assert handlers.merge_waiting(None, handlers.FOR_NUMBERING) is None
    assert handlers.merge_waiting(handlers.FOR_TARIFF, None) is None


def test_too_many_extensions_to_list_become_a_retry_of_every_waiting_call() -> None:
    many = handlers.for_extensions(*(str(n) for n in range(handlers.MAX_LISTED_EXTENSIONS)))
    assert handlers.merge_waiting(many, handlers.for_extensions("x")) is None
    same = handlers.merge_waiting(many, handlers.for_extensions("1"))  # already listed: still within the bound
    assert same is not None and set(same.extensions) == set(many.extensions)
