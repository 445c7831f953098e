"""Refuse a `MNISTCTL_<SUBCOMMAND>__...` environment variable that names no option, instead of ignoring it.

    MNISTCTL_FIT__TRAINER__MAX_EPOCH=3 mnistctl fit    # -> error: ... did you mean MNISTCTL_FIT__TRAINER__MAX_EPOCHS?

jsonargparse reads only the variables of its options (`mnistctl fit --help` lists them, `ENV:`) and skips
every other name silently: a typo, or an option inside a class-typed group. A group such as --optimizer
is one option with one variable (`MNISTCTL_FIT__OPTIMIZER`, a YAML/JSON class_path + init_args value); its
init args have none, so `MNISTCTL_FIT__OPTIMIZER__LR=-1` was ignored and the fit trained with the default.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping

from jsonargparse import ArgumentParser

from mnistctl.errors import UsageError


def option_env_vars(parser: ArgumentParser) -> set[str]:
    """The environment variable of every option the subcommand's parser reads from the environment.

    Named as jsonargparse names them (its get_env_var): env_prefix, "_", the dest; dots as "__"; upper case.
    """
    prefix = f"{parser.env_prefix}_".replace("-", "_")
    return {f"{prefix}{action.dest}".replace(".", "__").upper() for action in parser._actions if _reads_env(action)}


def _reads_env(action) -> bool:
    # What jsonargparse skips when it reads the environment: --help, --version, --print_config, --X.help.
    return not any(c.__name__ in _NON_PARSING for c in type(action).__mro__)


_NON_PARSING = ("_HelpAction", "_VersionAction", "NonParsingAction")


def check_env_vars(parser: ArgumentParser, subcommand: str, environ: Mapping[str, str] = os.environ) -> None:
    """UsageError for the first MNISTCTL_<SUBCOMMAND>__ variable in `environ` that is no option's."""
    prefix = f"MNISTCTL_{subcommand.upper()}__"
    unknown = sorted(name for name in environ if name.startswith(prefix))
    if not unknown:
        return
    known = option_env_vars(parser)
    unknown = [name for name in unknown if name not in known]
    if not unknown:
        return
    name = unknown[0]
    # A class-typed option (--optimizer, --trainer.logger): one variable, none for what is inside it.
    whole_only = [k for k in known if name.startswith(f"{k}__") and not any(o.startswith(f"{k}__") for o in known)]
    group = max(whole_only, key=len, default=None)
    flag = "--" + name.removeprefix(prefix).lower().replace("__", ".")
    if group is not None:  # an init arg of a class-typed option: only the whole option has a variable
        option = group.removeprefix(prefix).lower().replace("__", ".")
        example = _whole_value(parser, option, name.removeprefix(f"{group}__"), environ[name])
        raise UsageError(
            f"environment variable {name} names no option: --{option} is set from the environment only as a "
            f"whole, class and arguments, e.g. {group}='{example}'; or pass {flag} on the command line"
        )
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise UsageError(
        f"environment variable {name} names no option of mnistctl {subcommand}; {hint}"
        f"'mnistctl {subcommand} --help' lists each option's variable (ENV:)"
    )


def _whole_value(parser: ArgumentParser, option: str, arg: str, value: str) -> str:
    """The JSON that sets `option`'s init arg `arg` to `value`, with the option's default class."""
    default = parser.get_default(option)
    class_path = getattr(default, "class_path", None) or "CLASS"
    arg = arg.lower().removeprefix("init_args__").replace("__", ".")
    try:
        json.loads(value)
    except ValueError:
        value = json.dumps(value)
    return f'{{"class_path": "{class_path}", "init_args": {{"{arg}": {value}}}}}'
