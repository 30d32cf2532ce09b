"""The term language: what a query matches, and how it is rendered for each platform."""

from __future__ import annotations

import pytest

from mentionwatch.query import QueryError, parse

ACME = '"Acme Widgets" OR acmewidgets -"acme corp"'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I love Acme Widgets!", True),
        ("acme-widgets are great", True),  # any punctuation between a phrase's words
        ("ACMEWIDGETS rocks", True),
        ("#acmewidgets and @acmewidgets", True),
        ("acmewidgetsville is a town", False),  # a longer word is another word
        ("Acme Widgets, by Acme Corp", False),  # excluded anywhere
        ("widgets from acme", False),  # a phrase keeps its order
    ],
)
def test_matching(text, expected):
    assert parse(ACME).matches(text) is expected


def test_words_without_or_must_all_appear():
    query = parse("acme billing")
    assert query.matches("Billing at Acme is broken")
    assert not query.matches("Acme is great")


def test_renderings_for_platform_syntaxes():
    query = parse(ACME)
    assert query.quoted_alternatives() == [
        '"Acme Widgets" -"acme corp"',
        '"acmewidgets" -"acme corp"',
    ]
    assert query.boolean() == '("Acme Widgets" OR "acmewidgets") -"acme corp"'
    assert parse('acme billing OR "acme pay"').boolean() == '(("acme" "billing") OR "acme pay")'
    assert query.hashtags() == ["acmewidgets"]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ('"unbalanced', "unbalanced double quote"),
        ("acme OR", "OR needs a word or phrase on both sides"),
        ("OR acme", "OR needs a word or phrase on both sides"),
        ("-acme", "no word or phrase to search for"),
    ],
)
def test_bad_queries_say_why(query, reason):
    with pytest.raises(QueryError, match=reason):
        parse(query)
