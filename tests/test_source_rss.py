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
