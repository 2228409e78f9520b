import pytest

from isoview_core.pipeline import huge_pages
from isoview_core.pipeline.huge_pages import USER_SETTING, huge_page_advice, huge_page_advice_off_for_run

pytestmark = pytest.mark.skipif(huge_page_advice() is None, reason="this numpy has no switch for its huge-page advice")


@pytest.fixture
def advice_on(monkeypatch):
    """numpy advising huge pages, as it does on Linux by default, and no user setting."""
    monkeypatch.delenv(USER_SETTING, raising=False)
    setter = huge_pages._advice_setter()
    before = setter(True)
    yield
    setter(before)


def test_a_run_turns_the_advice_off_and_restores_it_when_it_ends(advice_on):
    with huge_page_advice_off_for_run():
        assert huge_page_advice() is False
        with huge_page_advice_off_for_run():  # nested: the outer run still needs it off when this one ends
            assert huge_page_advice() is False
        assert huge_page_advice() is False
    assert huge_page_advice() is True


def test_a_setting_of_the_user_is_left_alone(advice_on, monkeypatch):
    monkeypatch.setenv(USER_SETTING, "1")
    with huge_page_advice_off_for_run():
        assert huge_page_advice() is True

