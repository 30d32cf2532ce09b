"""RSS and Atom feeds as real servers publish them."""

from __future__ import annotations

RELATIVE_ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Pebblebase changelog</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>{{ago:1h}}</updated>
  <link rel="self" href="/rss/feeds/changelog.atom"/>
  <entry>
    <title>Pebblebase 2.0 is out</title>
    <link rel="self" href="/rss/api/entries/20"/>
    <link rel="alternate" type="text/html" href="/posts/pebblebase-2-0"/>
    <updated>{{ago:2h}}</updated>
    <summary>Branching for everyone.</summary>
  </entry>
</feed>
"""


def _config(feed: str) -> str:
    return f"""
[[terms]]
name = "pebblebase"
query = 'pebblebase'

[sources.rss]
feeds = ["{{web}}/rss/feeds/{feed}"]
"""


def test_relative_links_resolve_against_the_feed_url(project):
    # Hugo, Jekyll and many hand-written Atom feeds give entry links relative to the site,
    # with no xml:base: the entry's address is the feed URL joined with the link.
    project.web.platform("rss").extra["changelog.atom"] = RELATIVE_ATOM
    project.write_config(_config("changelog.atom"))
    result = project.run("poll")
    assert result.code == 0, result.err
    (record,) = project.run("export", "--source", "rss", "--format", "jsonl").jsonl()
    assert record["url"] == f"{project.web.url}/posts/pebblebase-2-0"
    assert record["reply_url"] == record["url"]
    # Without an id the link is the key: relative, it would collide across feeds.
    assert record["key"] == f"rss:{project.web.url}/posts/pebblebase-2-0"


RSS_AUTHOR_EMAIL = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Ops notes</title><link>https://ops.example.com/</link>
  <item>
    <title>Moving to Pebblebase</title>
    <link>https://ops.example.com/moving</link>
    <author>jane@ops.example.com (Jane Doe)</author>
    <pubDate>{{ago_rfc822:3h}}</pubDate>
    <description>Notes from our pebblebase migration.</description>
  </item>
</channel></rss>
"""


def test_rss_author_element_gives_the_name_not_the_email(project):
    # RSS 2.0's <author> is "email (Name)" by the spec; the name is the author to show.
    project.web.platform("rss").extra["ops.xml"] = RSS_AUTHOR_EMAIL
    project.write_config(_config("ops.xml"))
    assert project.run("poll").code == 0
    (record,) = project.run("export", "--source", "rss", "--format", "jsonl").jsonl()
    assert record["author"] == record["author_name"] == "Jane Doe"


HOME_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"/><title>Ops notes</title>
<link rel="alternate" type="application/rss+xml" href="/rss/feeds/ops.xml"/></head>
<body><article><h1>Moving to Pebblebase</h1><p>Notes from our pebblebase migration.</p></article>
</body></html>
"""
EMPTY_RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Quiet blog</title><link>https://quiet.example.com/</link>
</channel></rss>
"""


def test_a_web_page_in_place_of_a_feed_is_an_error_not_an_empty_feed(project):
    # A site's address instead of its feed's (or a feed URL that now serves the home page):
    # feedparser reads well-formed HTML as a feed of nothing, with only a benign complaint
    # (NonXMLContentType). An empty feed is still fine.
    rss = project.web.platform("rss")
    rss.extra["home.html"], rss.extra["quiet.xml"] = HOME_PAGE, EMPTY_RSS
    project.write_config(_config("home.html").replace('"]', '", "{web}/rss/feeds/quiet.xml"]'))
    result = project.run("poll")
    assert result.code == 1
    (line,) = [x for x in result.err.splitlines() if x.startswith("error: ")]
    assert f"{project.web.url}/rss/feeds/home.html is not a readable feed (an HTML page:" in line
    assert "quiet.xml" not in result.err
    assert project.rows("SELECT count(*) FROM mentions") == [(0,)]
