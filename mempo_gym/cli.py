"""The ``mempo-gym`` command: a thin layer over the Python APIs.

=====================  ===============================================================
``eval``               :func:`mempo_gym.harness.evaluate`
``report``             :func:`mempo_gym.report.summarize` + :mod:`mempo_gym.plots`
``suite``              :func:`mempo_gym.suite.run_suite` + :func:`mempo_gym.suite.pack_suite`
``submit``             :func:`mempo_gym.leaderboard.submit_run`
``score``              :func:`mempo_gym.leaderboard.score_submission`
``leaderboard``        :func:`mempo_gym.leaderboard.build_leaderboard`
``data list|download`` :mod:`mempo_gym.data`
``demo``               :func:`run_demo` (evaluate + summarize on the embedded default)
``serve``              ``mempo_agents.serve`` (an OpenAI-compatible server; ``mempo_gym.commands`` entry point)
=====================  ===============================================================
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

EXIT_ERROR = 1
EXIT_REJECTED = 3


class CliError(Exception):
    """A user error reported as one line on stderr with exit code 1."""


def parse_assignments(items: Sequence[str] | None, flag: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict; values are JSON when they parse (``3``, ``true``, ``[1,2]``), else strings.

    >>> parse_assignments(["top_k=3", "memory=full", "flag=true"], "--env-kwarg")
    {'top_k': 3, 'memory': 'full', 'flag': True}
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"{flag} expects key=value, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _load_agent(name: str, options: dict[str, Any]) -> Any:
    """A registered agent by name, or ``package.module:factory`` for an unregistered one."""
    from mempo_gym.agent import Agent, make_agent

    if ":" not in name:
        return make_agent(name, **options)
    module_name, _, attr = name.partition(":")
    factory: Callable[..., Any] | None = getattr(importlib.import_module(module_name), attr, None)
    if not callable(factory):
        raise CliError(f"--agent {name}: module {module_name!r} has no callable {attr!r}")
    agent = factory(**options)
    if not isinstance(agent, Agent):
        raise CliError(f"{name} returned {type(agent).__name__}, not a mempo_gym.Agent")
    return agent


#: ``eval`` flags for served models -> the OpenAI backend's option names.
SERVED_MODEL_FLAGS = {"served-model": "served_model", "timeout": "timeout_s", "retries": "max_retries",
                      "concurrency": "concurrency"}


def cmd_eval(args: argparse.Namespace) -> int:
    from mempo_gym.harness import evaluate

    options = parse_assignments(args.agent_option, "--agent-option")
    if args.model is not None:
        options["model"] = args.model
    served = {flag: (option, getattr(args, flag.replace("-", "_"))) for flag, option in SERVED_MODEL_FLAGS.items()}
    given = {flag: value for flag, value in served.items() if value[1] is not None}
    if given and not (args.model or "").startswith(("http://", "https://")):
        raise CliError(f"{', '.join('--' + f for f in given)} apply only to a served model: "
                       "pass --model http://HOST:PORT/v1 as well")
    options.update(dict(given.values()))
    agent = _load_agent(args.agent, options)
    frame = evaluate(
        args.env, agent, episodes=args.episodes, seed=args.seed, out=args.out,
        batch_size=args.batch_size if args.batch_size is not None else (args.concurrency or 1),
        resume=args.resume, env_kwargs=parse_assignments(args.env_kwarg, "--env-kwarg"),
        progress=not args.no_progress, task_order=args.task_order, first=args.first,
    )
    failed = frame[frame["failed"].eq(True)] if "failed" in frame.columns else frame.iloc[0:0]
    done = frame.drop(index=failed.index)
    if not done.empty:
        means = done.groupby("env_id")[["f1", "em", "tokens_total", "tokens_peak"]].mean()
        print(means.to_string(float_format=lambda x: f"{x:.3f}"))
    if not failed.empty:
        print(f"{len(failed)} episodes failed (first: {failed.iloc[0]['key']}: {failed.iloc[0]['failure']}); "
              f"rerun with --resume to retry them", file=sys.stderr)
    print(f"run folder: {args.out}")
    return 0


DEMO_ENVS = ("MemPO-SynthWiki-v0", "MemPO-SynthWiki-2obj-v0")
DEMO_PREFIX_CACHE = 32768  # cached positions (~1.5 GB in float32): 10 episodes of up to ~1k tokens fit


def run_demo(
    out: str | Path = "runs/demo", *, env_ids: Sequence[str] = DEMO_ENVS, episodes: int = 20, seed: int = 0,
    batch_size: int = 10,
) -> Any:
    """The main job on the embedded default: the trained MemPO agent (self-memory), its
    full-context counterpart (trained for full context) and the oracle upper bound, on the
    registered SynthWiki envs (the test world: the agents were trained on other worlds);
    returns the summary table (token savings against full context).

    Both LLM agents are the registry's defaults (``make_agent("mempo")``,
    ``make_agent("full-context")``): LoRA adapters over the embedded SmolLM2-135M shipped in
    ``agents/checkpoints/``, so the demo runs with nothing downloaded. They reuse the keys and
    values of each episode's previous prompt (``prefix_cache_tokens``), which plays the same
    greedy episodes in less CPU time (``benchmarks/prefix_cache.py``).
    """
    from mempo_gym.agent import make_agent
    from mempo_gym.harness import evaluate
    from mempo_gym.report import summarize

    out = Path(out)
    plan = [
        ("mempo-self-memory", make_agent("mempo", max_new_tokens=128, prefix_cache_tokens=DEMO_PREFIX_CACHE)),
        ("full-context", make_agent("full-context", max_new_tokens=128, prefix_cache_tokens=DEMO_PREFIX_CACHE)),
        ("oracle", make_agent("oracle")),
    ]
    for name, run_agent in plan:
        folder = out / name
        evaluate(list(env_ids), run_agent, episodes=episodes, seed=seed, out=folder, batch_size=batch_size,
                 resume=(folder / "config.json").is_file())
    return summarize([out / name for name, _ in plan], baseline=out / "full-context")


def cmd_demo(args: argparse.Namespace) -> int:
    from mempo_gym.harness.runfiles import read_episodes
    from mempo_gym.report import to_markdown, write_report

    table = run_demo(args.out, env_ids=args.env or DEMO_ENVS, episodes=args.episodes, seed=args.seed,
                     batch_size=args.batch_size)
    print(to_markdown(table))
    paths = write_report(table, Path(args.out) / "report")
    episodes = read_episodes(Path(args.out) / "mempo-self-memory" / "episodes.jsonl").records
    if episodes:
        first = max(episodes, key=lambda e: (float(e.get("em") or 0.0), len(e.get("transcript") or [])))
        print(f"\nOne self-memory episode ({first.get('task_id')}, EM {float(first.get('em') or 0):.0f}): "
              "the memory it wrote each turn, then its last context")
        for turn in first.get("transcript") or []:
            print(f"  turn {turn.get('turn')}: {' '.join(str(turn.get('output', '')).split())}")
        last = (first.get("transcript") or [{}])[-1]
        print(last.get("context", "")[-600:])
    print(f"\nReport: {', '.join(str(p) for p in paths.values())}")
    return 0



def cmd_report(args: argparse.Namespace) -> int:
    from mempo_gym.report import load_runs, summarize, to_markdown, write_report

    table = summarize(args.runs, baseline=args.baseline)
    paths = write_report(table, args.out)
    if not args.no_plots:
        from mempo_gym.plots import plot_cost_vs_objectives, plot_frontier

        dirs = list(args.runs) + ([args.baseline] if args.baseline and args.baseline not in args.runs else [])
        paths["frontier"] = Path(args.out) / "frontier.png"
        paths["cost_vs_objectives"] = Path(args.out) / "cost_vs_objectives.png"
        plot_frontier(table, paths["frontier"])
        plot_cost_vs_objectives(load_runs(dirs), paths["cost_vs_objectives"])
    print(to_markdown(table), end="")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def cmd_suite(args: argparse.Namespace) -> int:
    from mempo_gym.suite import pack_suite, run_suite

    options = parse_assignments(args.agent_option, "--agent-option")
    if args.model is not None:
        options["model"] = args.model
    agent = _load_agent(args.agent, options)
    folders = run_suite(agent, args.out, suite=args.suite, seed=args.seed, world_seed=args.world_seed,
                        batch_size=args.batch_size, env_kwargs=parse_assignments(args.env_kwarg, "--env-kwarg"),
                        entries=args.entry, episodes=args.episodes, progress=not args.no_progress)
    print(f"ran {len(folders)} suite entries into {args.out}")
    if args.name and args.contact:
        print(f"submission: {pack_suite(args.out, name=args.name, contact=args.contact)}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from mempo_gym.leaderboard import submit_run

    path = submit_run(args.run, name=args.name, contact=args.contact, out=args.out)
    print(f"submission: {path}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from mempo_gym.leaderboard import SubmissionRejected, score_submission, write_result

    try:
        result = score_submission(args.submission, data_dir=args.data_dir)
    except SubmissionRejected as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_REJECTED
    out = Path(args.out) if args.out else Path(args.submission).with_suffix(".score.json")
    write_result(result, out)
    for env_id, env in result["envs"].items():
        print(f"{env_id}: n={env['n']} F1={env['f1']:.3f} [{env['f1_lo']:.3f}, {env['f1_hi']:.3f}] "
              f"EM={env['em']:.3f} tokens_total={env['tokens_total']:.1f} tokens_peak={env['tokens_peak']:.1f}")
    print(f"accepted; result: {out}")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from mempo_gym.leaderboard import build_leaderboard

    paths = build_leaderboard(args.results, args.out)
    print(paths["markdown"].read_text(encoding="utf-8"), end="")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from mempo_gym.data import dataset_available, list_datasets, resolve_data_dir

    root = resolve_data_dir(args.data_dir)
    print(f"data directory: {root}")
    for spec in list_datasets():
        present = dataset_available(spec, args.data_dir)  # the envs' rule
        how = "download" if spec.downloadable else "manual"
        print(f"{spec.name:40s} {spec.kind:6s} {'present' if present else 'missing':8s} {how:8s} {spec.description}")
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from mempo_gym.data import download_dataset

    for name in args.names:
        for path in download_dataset(name, args.data_dir, force=args.force):
            print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mempo-gym", description="MemPO-Gym evaluation, reports and leaderboard.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("eval", help="run an agent on environments into a run folder")
    p.add_argument("--env", action="append", required=True, help="env id (repeatable)")
    p.add_argument("--agent", required=True, help="registered agent name, or package.module:factory")
    p.add_argument("--model", help="packaged checkpoint name, model folder, or an OpenAI-compatible server URL "
                   "(http://HOST:PORT/v1)")
    p.add_argument("--served-model", help="model name on the server (default: the one it lists at /v1/models)")
    p.add_argument("--timeout", type=float, help="served model: seconds one request may take (default 60)")
    p.add_argument("--retries", type=int, help="served model: retries of a timed-out or failed request (default 4)")
    p.add_argument("--concurrency", type=int,
                   help="served model: requests in flight at once (default 8; also the default --batch-size)")
    p.add_argument("--episodes", type=int, required=True, help="episodes per env")
    p.add_argument("--first", type=int, default=0,
                   help="play only episodes FIRST..EPISODES-1 of the task order: a shard of the run that others "
                        "(other processes or machines, other --out) complete; episode i is the same task in each")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="run folder, e.g. runs/NAME")
    p.add_argument("--batch-size", type=int, default=None,
                   help="episodes played together, one request each per round (default: --concurrency, else 1)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (failed episodes are retried)")
    p.add_argument("--env-kwarg", action="append", metavar="KEY=VALUE", help="gym.make keyword (repeatable)")
    p.add_argument("--agent-option", action="append", metavar="KEY=VALUE", help="agent factory option (repeatable)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--task-order", choices=("permutation", "sample"), default="permutation",
                   help="permutation: each task once (default); sample: with replacement")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("demo", help="the main job: the trained MemPO agent vs its full-context counterpart on SynthWiki")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--env", action="append", help=f"env id (repeatable; default {' and '.join(DEMO_ENVS)})")
    p.add_argument("--episodes", type=int, default=20, help="episodes per env (each task once)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=10)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("report", help="summary tables and plots of run folders")
    p.add_argument("runs", nargs="+")
    p.add_argument("--baseline", help="run folder that token savings are measured against")
    p.add_argument("--out", default="report", help="folder for report.md/.csv/.json and plots")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("suite", help="run an agent on the whole benchmark suite and pack the submission")
    p.add_argument("--agent", required=True, help="registered agent name, or package.module:factory")
    p.add_argument("--model", help="model path or URL (passed to the agent as model=)")
    p.add_argument("--out", required=True, help="folder for the suite's run folders, e.g. runs/NAME-bench")
    p.add_argument("--suite", default="MemPO-Bench-v0")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--world-seed", type=int, help="private SynthWiki world seed (hosts: keep it secret)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--entry", action="append", help="run only this env id of the suite (repeatable; incomplete)")
    p.add_argument("--episodes", type=int, help="cap each entry's episodes (a quick, incomplete run)")
    p.add_argument("--env-kwarg", action="append", metavar="KEY=VALUE", help="override a setting (non-standard)")
    p.add_argument("--agent-option", action="append", metavar="KEY=VALUE", help="agent factory option (repeatable)")
    p.add_argument("--name", help="submission name (with --contact: pack OUT/submission.zip)")
    p.add_argument("--contact")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_suite)

    p = sub.add_parser("submit", help="pack a run folder into a leaderboard submission zip")
    p.add_argument("run")
    p.add_argument("--name", required=True)
    p.add_argument("--contact", required=True)
    p.add_argument("--out", help="zip path (default RUN/submission.zip)")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("score", help="validate and re-score a submission zip")
    p.add_argument("submission")
    p.add_argument("--data-dir", help="data directory for envs built from datasets")
    p.add_argument("--out", help="result JSON (default SUBMISSION.score.json)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("leaderboard", help="rank scored results into leaderboard.md and index.html")
    p.add_argument("results", help="folder of *.score.json results")
    p.add_argument("--out", help="output folder (default: the results folder)")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("data", help="list or download datasets")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    q = data_sub.add_parser("list", help="registered datasets and whether they are present")
    q.add_argument("--data-dir")
    q.set_defaults(func=cmd_data_list)
    q = data_sub.add_parser("download", help="download datasets into the data directory")
    q.add_argument("names", nargs="+")
    q.add_argument("--data-dir")
    q.add_argument("--force", action="store_true")
    q.set_defaults(func=cmd_data_download)
    _add_plugin_commands(sub)
    return parser


COMMANDS_GROUP = "mempo_gym.commands"


def _add_plugin_commands(sub: Any) -> None:
    """Commands other packages add through the ``mempo_gym.commands`` entry-point group
    (``serve`` comes from ``mempo_agents.serve``; mempo_gym never imports it by name)."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:  # a broken plugin must not take the other commands down
            sub.add_parser(ep.name, help=f"(unavailable: {exc})").set_defaults(
                func=lambda args, exc=exc: _raise(CliError(f"{ep.name} is unavailable: {exc}")))
            continue
        register(sub)


def _raise(exc: Exception) -> int:
    raise exc


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message with line breaks folded (the type name for
    errors that are not MemPO-Gym's own user errors).

    >>> one_line(ValueError("bad\\n  detail"))
    'bad; detail'
    """
    text = "; ".join(part.strip() for part in str(exc).splitlines() if part.strip()) or type(exc).__name__
    return text


_USER_ERRORS = ("CliError", "AgentNotFoundError", "DatasetError", "RunFileError", "BackendError",
                "SubmissionRejected", "ToolFatalError")


def _is_user_error(exc: BaseException) -> bool:
    """Errors whose message already says what was wrong and what to do."""
    if isinstance(exc, (OSError, ValueError, TypeError, ImportError)):
        return True
    return any(cls.__name__ in _USER_ERRORS for cls in type(exc).__mro__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mempo-gym`` console script; returns the exit code.

    Every error is one line on stderr (exit code 1); ``MEMPO_GYM_TRACEBACK=1`` shows the
    traceback as well.
    """
    import os

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted; finished episodes are saved (continue with --resume)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's one place that turns errors into one line
        if os.environ.get("MEMPO_GYM_TRACEBACK"):
            import traceback

            traceback.print_exc()
        if _is_user_error(exc):
            message = one_line(exc)
        else:
            message = (f"{type(exc).__name__}: {one_line(exc)} (unexpected; rerun with MEMPO_GYM_TRACEBACK=1 "
                       "for the traceback and report it)")
        print(f"mempo-gym {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
