"""Echo grouping precision and recall on a labelled sample, through the real save path.

    python benchmarks/echo_eval.py [benchmarks/data/echoes_sample.jsonl]

Each line of the sample is a post with a `group` label: posts with the same label are one
text repeated (retweets, truncated retweets, quotes with a comment, cross-posts with other
links, share-button copies, a blog post and its Reddit copy); different labels are different
posts, many deliberately close (the same template with other numbers, versions, cities or
dates; the same complaint in other words; short texts that several people write on their
own). The posts are saved one minute apart, in file order, into a fresh database with
`Store.save_page`, exactly as a poll saves them; the groups the store forms are compared
with the labels over every pair of posts.
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mentionwatch.models import Mention
from mentionwatch.store import Store

DEFAULT = Path(__file__).with_name("data") / "echoes_sample.jsonl"


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    posts = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "sample.db")
        for i, post in enumerate(posts):
            m = Mention(
                source=post["source"],
                native_id=str(i),
                text=post["text"],
                created_at=start + timedelta(minutes=i),
                author=post["author"],
                terms=["pebblebase"],
            )
            store.save_page(post["source"], "sample", [m], None)
        rows = store.conn.execute("SELECT native_id, id, echo_of FROM mentions").fetchall()
        root = {int(r[0]): r[2] or r[1] for r in rows}
        store.close()
    tp = fp = fn = 0
    for a, b in itertools.combinations(range(len(posts)), 2):
        same = posts[a]["group"] == posts[b]["group"]
        grouped = root[a] == root[b]
        tp += same and grouped
        fp += grouped and not same
        fn += same and not grouped
        if grouped != same:
            kind = "wrongly grouped" if grouped else "missed"
            print(f"{kind}: {posts[a]['text'][:60]!r} / {posts[b]['text'][:60]!r}")
    labelled = len({p["group"] for p in posts})
    print(f"\n{len(posts)} posts in {labelled} labelled groups; {tp + fn} echo pairs")
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    print(
        f"pairwise precision {precision:.1%} ({tp} of {tp + fp} grouped pairs), "
        f"recall {recall:.1%} ({tp} of {tp + fn} echo pairs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
