from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from imagine.prefilter import Prefilter

words = Prefilter(["gore", "bad word"])


@pytest.mark.parametrize(
    "text",
    [
        "gore",
        "GORE",
        "so much gore!",
        "g.o.r.e",
        "g o r e",
        "g-o-r-e",
        "g0r3",
        "ｇｏｒｅ",
        "góre",
        "a bad word here",
        "BAD   WORD",
        "b4d w0rd",
        "go\u00adre",  # a soft hyphen
        "g\u200bore",  # a zero-width space
        "go\u200dre\ufeff",  # a zero-width joiner and a byte-order mark
    ],
)
def test_found(text: str) -> None:
    assert words.find(text) in ("gore", "bad word")


@pytest.mark.parametrize("text", ["gorge", "a goretex jacket", "bad", "word", "a badword"])
def test_not_found(text: str) -> None:
    assert words.find(text) is None


def test_default_list_loads() -> None:
    default = Prefilter.load(None)
    assert len(default) > 10
    assert default.find("nsfw art") == "nsfw"


default = Prefilter.load(None)
DEFAULT_PHRASES = [
    line.split("#", 1)[0].strip()
    for line in resources.files("imagine")
    .joinpath("data/banned_words.txt")
    .read_text()
    .splitlines()
    if line.split("#", 1)[0].strip()
]


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("a n\u0430ked woman", "naked"),  # a Cyrillic а
        ("a NAKED woman", "naked"),
        ("\u039d\u0391\u039a\u0395D", "naked"),  # Greek capitals ΝΑΚΕ
        ("\U0001d427\U0001d41a\U0001d424\U0001d41e\U0001d41d", "naked"),  # mathematical bold
        ("\U0001d62f\U0001d622\U0001d62c\U0001d626\U0001d625", "naked"),  # mathematical sans italic
        ("\u0274\u1d00\u1d0b\u1d07\u1d05", "naked"),  # small capitals ɴᴀᴋᴇᴅ
        ("\U0001f17d\U0001f170\U0001f17a\U0001f174\U0001f173", "naked"),  # negative squared 🅽🅰🅺🅴🅳
        ("n\u0430\u0301k\u0435d", "naked"),  # Cyrillic а with an accent, Cyrillic е
        ("n.\u0430.k.\u0435.d", "naked"),  # look-alikes and separators
        ("\u0578\u0430k\u0435d", "naked"),  # Armenian ո, Cyrillic а and е
        ("\u0445\u0445\u0445", "xxx"),  # Cyrillic ххх
        ("\u0455\u0435\u0445", "sex"),  # Cyrillic ѕех
        ("\u03a7\u03a7\u03a7 art", "xxx"),  # Greek capital chi
        ("\u0433\u043e\u0433\u0435 \u0433\u043e\u0433\u0435 g\u043er\u0435", "gore"),
        ("\uff4e\u0430\uff4b\u0435\uff44", "naked"),  # full-width and Cyrillic mixed
        ("n\u200b\u0430ked", "naked"),  # a zero-width space and a Cyrillic а
        ("c\u043erp\u0455\u0435", "corpse"),
    ],
)
def test_look_alike_letters_are_read_as_the_letters_they_imitate(text: str, phrase: str) -> None:
    assert default.find(text) == phrase


@pytest.mark.parametrize(
    "text",
    [
        "g\u043er\u0435",  # Cyrillic о and е
        "\u0261ore",  # Latin small script g
        "\u0262\u1d0f\u0280\u1d07",  # small capitals ɢᴏʀᴇ
        "b\u0430d w\u03bfrd",  # Cyrillic а, Greek ο
        "\u0392\u0391D \u0461\u041eRD",  # Greek ΒΑ, Cyrillic ѡО
    ],
)
def test_look_alikes_of_a_listed_phrase_are_found(text: str) -> None:
    assert words.find(text) in ("gore", "bad word")


@pytest.mark.parametrize(
    "text",
    [
        "Старый маяк на закате, горе от ума и пакет молока",  # горе, пакет: look-alike letters
        "ПРИВЕТ, КАК ДЕЛА? Хорошая погода, сорок сороков",
        "Київ навесні, каштани цвітуть над Дніпром",
        "Београд ноћу, река и мостови",
        "Γειά σου κόσμε, ένα σπίτι δίπλα στη θάλασσα",
        "ΝΥΧΤΑ ΣΤΗΝ ΑΘΗΝΑ ΜΕ ΑΣΤΕΡΙΑ",
        "Երևանը գիշերով, Արարատ լեռը հեռվում",
        "Ein großer Hund läuft über die Straße im Nebel",
        "Une église près de la mer, à l'aube, façon Monet",
        "Łódź nocą, stare kamienice i tramwaje",
        "Işıklı bir İstanbul gecesi, Boğaz üzerinde",
        "Phố cổ Hội An về đêm với đèn lồng",
        "夜の東京の街並み, 长城上的日出, غروب الشمس فوق الصحراء, हिमालय पर सूर्योदय",
        # The whole TR39 skeleton would read these as "porn", "nudlty" and "hental".
        "a pom pom hat on a POMERANIAN, pom",
        "ILLUMINATED NUDIBRANCH, HENTAIGANA calligraphy",
        "Essex and Sussex coastlines at dawn",
    ],
)
def test_innocent_text_in_any_script_passes(text: str) -> None:
    assert default.find(text) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gets_a_listed_phrase_or_none(text: str) -> None:
    assert default.find(text) in (None, *DEFAULT_PHRASES)


async def test_the_service_refuses_a_look_alike_spelling(client: TestClient[Any, Any]) -> None:
    response = await client.post("/v2/imagine", json={"msg": "a n\u0430ked woman --ar 2:3"})
    assert response.status == 400
    assert await response.json() == {
        "success": False,
        "msg": "Invalid phrase: 'naked'",
        "code": "BANNED_PROMPT",
    }
