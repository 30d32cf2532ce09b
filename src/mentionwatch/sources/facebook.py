"""The founder's own Facebook Page, through the Graph API with a Page access token: comments
on the Page's recent posts, posts the Page is tagged in, and visitors' posts on the Page.

Config (`[sources.facebook]`):
  page_id  the Page's id (Page settings, or `GET /me/accounts` with your user token).
  token    a Page access token with pages_read_engagement, pages_read_user_content and
           pages_manage_engagement (replies), plus pages_messaging for private replies.
  posts    how many of the Page's newest posts have their comments read each poll (25).

Every comment and post found here is addressed to the Page (an owned job): kept even when it
names no term, under every term that applies. Meta has no list of plain-text mentions
of a Page elsewhere. Replies are comments as the Page; `reply --private` is Meta's private
reply: one Messenger message per comment or visitor post, within 7 days of it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from functools import partial
from typing import Any, ClassVar

from mentionwatch.models import Job, Mention, Option, Page, Term, ThreadPost, iso
from mentionwatch.sources.base import Posted
from mentionwatch.sources.common import (
    Anchor,
    Batch,
    Obj,
    OutOfReach,
    Search,
    anchor,
    convert,
    string,
)
from mentionwatch.sources.graph import GraphError, GraphSource, context, graph_id

COMMENT_FIELDS = (
    "id,message,created_time,from,permalink_url,like_count,comment_count,parent{id},"
    "can_reply_privately,is_hidden"
)
POST_FIELDS = "id,message,created_time,from,permalink_url,can_reply_privately"
LIMIT = 100
COMMENT_LIMIT = 8000  # characters of a comment
MESSAGE_LIMIT = 2000  # characters of a Messenger text message
SCOPES = ("comments", "tagged", "visitor_posts")


class Facebook(GraphSource):
    name = "facebook"
    default_base_url = "https://graph.facebook.com/v25.0"
    options: ClassVar[dict[str, Option]] = {
        "page_id": Option(str, help="your Page's id"),
        "token": Option(str, secret=True, help="a Page access token"),
        "posts": Option(int, default=25, help="newest Page posts whose comments are read"),
    }
    required = (("page_id", "token"),)
    can_reply = True
    reply_limit = COMMENT_LIMIT
    can_message = True
    message_limit = MESSAGE_LIMIT
    default_interval = 600.0  # Meta asks Page apps to poll gently (webhooks are its way)
    token_help = (
        "get a new Page access token (Graph API Explorer, or GET /me/accounts with a user "
        "token) and set sources.facebook.token"
    )
    permissions: ClassVar[dict[str, str]] = {
        "messages": "pages_messaging",
        "tagged": "pages_read_user_content",
        "comments": "pages_read_engagement or pages_manage_engagement",
    }

    @property
    def page(self) -> str:
        return graph_id(self.settings.get("page_id"), "sources.facebook.page_id")

    def jobs(self, terms: Sequence[Term]) -> list[Job]:
        return self.owned_jobs(terms, SCOPES)

    # Polling

    async def fetch(self, job: Job, cursor: str | None) -> AsyncIterator[Page]:
        if job.scope == "comments":
            # Each recent post is its own walk: its comments newest first, back to its mark.
            posts = await self._recent_posts()
            searches = [Search(f"post:{p['id']}", partial(self._comments, p)) for p in posts]
        else:
            listing = partial(self._edge, job.scope)
            searches = [Search(job.scope, listing, newest_first=job.scope != "tagged")]
        async for page in self.walk(searches, cursor):
            yield page

    async def _recent_posts(self) -> list[dict[str, Any]]:
        limit = max(1, min(int(self.settings.get("posts") or 25), LIMIT))
        params = {"fields": "id,message,created_time,updated_time", "limit": limit}
        answer = await self.get(f"{self.page}/posts", params, "reading the Page's posts")
        posts = []
        for number, item in enumerate(answer.array("data"), 1):
            post = Obj(item, f"post {number}")
            updated = post.time("updated_time", required=False)
            posts.append({"id": graph_id(post.need("id"), post.where),
                          "message": post.string("message", required=False),
                          "updated": updated.timestamp() if updated else None})  # fmt: skip
        return posts

    async def _comments(
        self, post: dict[str, Any], lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        # A post's updated_time moves with every new comment: one untouched since the newest
        # comment the last poll saw (lower + overlap) is not asked again; a gap, left by a
        # cap or a crash, is read all the same.
        if (
            upper is None
            and post["updated"] is not None
            and post["updated"] <= lower + self.overlap
        ):
            return
        params = {"filter": "stream", "order": "reverse_chronological", "since": int(lower),
                  "fields": COMMENT_FIELDS, "limit": LIMIT}  # fmt: skip
        convert_one = partial(self._comment, post=post)
        async for batch in self._listing(f"{post['id']}/comments", params, convert_one, upper):
            yield batch

    async def _edge(
        self, edge: str, lower: float, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        params = {"fields": POST_FIELDS, "limit": LIMIT, "since": int(lower)}
        async for batch in self._listing(
            f"{self.page}/{edge}", params, partial(self._post, edge=edge), upper
        ):
            yield batch

    async def _listing(
        self, path: str, params: dict[str, Any], to_mention: Any, upper: Anchor | None
    ) -> AsyncGenerator[Batch, None]:
        """Pages of an edge, newest first; a gap resumes after the cursor it was left at."""
        number = 1
        try:
            async for items, after in self.pages(path, params, path, upper.id if upper else None):
                mentions, problems = convert(items, to_mention, number)
                # The page's oldest item, skipped ones included, and the cursor after it.
                found = anchor(items, lambda item: item.get("created_time"))
                oldest = Anchor(found.at, after) if found else None
                yield Batch(mentions, oldest, bool(after), problems)
                number += 1
        except GraphError as exc:
            if upper is not None and exc.graph_code == 100:
                raise OutOfReach(f"{self.name}: the rest of {path} could not be read any more "
                                 f"(its cursor expired): {exc}") from None  # fmt: skip
            raise

    def _comment(self, item: Obj, post: dict[str, Any]) -> Mention | None:
        comment_id = graph_id(item.need("id"), item.where)
        name, from_id = _author(item)
        if from_id == self.page:
            return None  # the Page's own replies
        created = item.time("created_time")
        assert created is not None
        parent = item.obj("parent", required=False)
        return Mention(
            source=self.name,
            native_id=comment_id,
            text=item.string("message", required=False) or "",
            created_at=created,
            url=item.string("permalink_url", required=False),
            author=name,
            author_name=name,
            title=context(post.get("message")),
            reach=item.count("like_count") + item.count("comment_count"),
            extra={
                "kind": "comment",
                "id": comment_id,
                "post_id": post["id"],
                "parent_id": parent.string("id", required=False) if parent else None,
                "from_id": from_id,
                "can_reply_privately": item.get("can_reply_privately"),
            },
        )

    def _post(self, item: Obj, edge: str) -> Mention | None:
        post_id = graph_id(item.need("id"), item.where)
        created = item.time("created_time")
        assert created is not None
        name, from_id = _author(item)
        return Mention(
            source=self.name,
            native_id=post_id,
            text=item.string("message", required=False) or "",
            created_at=created,
            url=item.string("permalink_url", required=False),
            author=name,
            author_name=name,
            extra={
                "kind": "tagged" if edge == "tagged" else "visitor_post",
                "id": post_id,
                "from_id": from_id,
                "can_reply_privately": item.get("can_reply_privately"),
            },
        )

    # Checking, threads, replies

    async def check(self) -> str:
        page = await self.get(self.page, {"fields": "id,name"}, "reading the Page")
        line = f"Page {page.string('name', required=False) or self.page} readable with this token"
        usage = self.usage()
        return f"{line}; {usage}" if usage else line

    async def thread(self, mention: Mention) -> list[ThreadPost]:
        """The Page post a comment was left on (and, for a reply, the comment it answers)."""
        wanted = [
            ("parent", mention.extra.get("parent_id")),
            ("root", mention.extra.get("post_id")),
        ]
        found = []
        for relation, ident in wanted:
            if not ident:
                continue
            item = await self.get(
                graph_id(ident), {"fields": "message,created_time,from,permalink_url"}
            )
            found.append(ThreadPost(relation, item.string("message", required=False) or "",
                                    string((item.get("from") or {}).get("name")),
                                    item.string("permalink_url", required=False),
                                    iso(item.time("created_time", required=False))))  # fmt: skip
        return found

    def _target(self, mention: Mention) -> str:
        """Where a public reply is posted: the thread's top comment (Facebook nests one level
        deep), or the post itself."""
        return graph_id(mention.extra.get("parent_id") or mention.native_id)

    async def post_reply(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        answer = await self.post(f"{self._target(mention)}/comments", data={"message": text},
                                 doing="reply refused")  # fmt: skip
        comment = graph_id(answer.need("id"), "the new comment")
        link = await self.get(comment, {"fields": "permalink_url"})
        return Posted(comment, link.string("permalink_url", required=False) or mention.url)

    async def find_reply(self, mention: Mention, text: str) -> Posted | None:
        params = {"filter": "stream", "order": "reverse_chronological", "limit": 50,
                  "fields": "id,message,from,permalink_url"}  # fmt: skip
        answer = await self.get(f"{self._target(mention)}/comments", params)
        for item in answer.array("data"):
            if (
                isinstance(item, dict)
                and string((item.get("from") or {}).get("id")) == self.page
                and (string(item.get("message")) or "").strip() == text.strip()
            ):
                return Posted(graph_id(item.get("id")), string(item.get("permalink_url")))
        return None

    # Private replies (Messenger)

    def message_where(self, mention: Mention) -> str:
        return f"a private reply on Messenger to {mention.author or 'the author'} (one per comment)"

    def message_problem(self, mention: Mention) -> str | None:
        kind = mention.extra.get("kind")
        if kind == "tagged":
            return (
                f"{self.name}: a post the Page is tagged in cannot get a private reply (only "
                "comments and visitors' posts on the Page can): reply in public"
            )
        window = self.window_problem(mention)
        if window:
            return window
        if mention.extra.get("can_reply_privately") is False:
            return (
                f"{self.name}: Meta says this {'comment' if kind == 'comment' else 'post'} cannot "
                "get a private reply (already answered privately, or written by a Page)"
            )
        return None

    async def post_message(self, mention: Mention, text: str, idempotency_key: str) -> Posted:
        side = "comment_id" if mention.extra.get("kind") == "comment" else "post_id"
        return await self.private_reply(self.page, {side: graph_id(mention.native_id)}, text)

    async def find_message(self, mention: Mention, text: str) -> Posted | None:
        """Meta allows one private reply per comment: once it is sent, the comment says it
        can no longer get one (UNCERTAIN: the only trace a Page token can read)."""
        item = await self.get(graph_id(mention.native_id), {"fields": "can_reply_privately"})
        if item.get("can_reply_privately") is False:
            return Posted(f"private reply to {mention.native_id}", None)
        return None


def _author(item: Obj) -> tuple[str | None, str | None]:
    """(name, id) of who wrote an item. Graph leaves `from` out when it may not say (a
    user's post is shown with its author only to that author: often so on /tagged)."""
    author = item.obj("from", required=False)
    if author is None:
        return None, None
    return author.string("name", required=False), author.string("id", required=False)


SOURCE = Facebook
