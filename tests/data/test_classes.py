"""Source classes declare what a source can do; code asks them instead of testing names."""

from mstt.data.classes import CATCH_ALL, DEFAULT_CLASSES, OTHER, catch_all_source, is_instrument, source_class


def test_the_catch_all_source_is_separated_but_not_transcribed():
    assert source_class(OTHER) is CATCH_ALL and CATCH_ALL.catch_all and not CATCH_ALL.transcribed
    assert not is_instrument(OTHER)
    assert catch_all_source(["piano", OTHER]) == OTHER and catch_all_source(["piano"]) is None


def test_instrument_classes_and_unknown_names_are_transcribed():
    assert all(cls.transcribed and not cls.catch_all for cls in DEFAULT_CLASSES.values())
    assert is_instrument("drums") and source_class("drums").is_drum
    assert source_class("kazoo") is None and is_instrument("kazoo")  # e.g. a class a recipe adds
