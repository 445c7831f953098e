"""A sweep's command-line overrides: parsed with Hydra's own grammar, with Hydra's errors as one line.

    mnistctl sweep 'hydra.sweeper.params={model.dropout_ratio:"0.1,0.3"}'   # = model.dropout_ratio=0.1,0.3

`hydra.sweeper.params={KEY: VALUES, ...}` on the command line is the sweeper's params written inline;
OmegaConf 2.3 cannot merge a dict into the basic sweeper's empty params node (an AttributeError), so it
is spelt out here as the overrides a sweeper makes of its params (KEY=VALUES, ahead of the other
overrides, which win on the same key: Hydra's BasicSweeper and the Optuna sweeper both do that).
"""

from __future__ import annotations

from mnistctl.errors import UsageError

PARAMS_KEY = "hydra.sweeper.params"
GRAMMAR_HINT = "write KEY=VALUE, KEY=a,b, KEY=range(1,4) or GROUP=OPTION"


def one_line(err: Exception) -> str:
    """Hydra's multi-line messages as one line, keeping the list of available options."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    options = [line for line in lines[1:] if not line.startswith(("Available", "Config search", "provider="))]
    available = any(line.startswith("Available options") for line in lines)
    head = lines[0].split(" expecting {")[0]
    if head.startswith(("Could not override", "Error merging override")):  # the reason is in the cause
        cause = str(err.__cause__ or "no such key").strip().splitlines() or ["no such key"]
        head = f"{head.rstrip('.')}: {cause[0]}"
    if head.startswith("Sweeping over Hydra's configuration is not supported"):
        head += (
            " (sweep over your own keys instead, e.g. hydra/sweeper=optuna 'model.dropout_ratio=interval(0.1,0.5)',"
            " or give the sweeper's params as hydra.sweeper.params={KEY:VALUES})"
        )
    if available:
        return f"{head} (options: {', '.join(options)})"
    noise = ("See https://", "To append", "full_key:", "object_type=", "reference_type=")
    rest = [line for line in lines[1:] if not line.startswith(noise)]
    return " ".join([head, *rest[:1]])


def parse(overrides: list[str], parser) -> list:
    """Hydra Override objects, one per override; a malformed one is a one-line UsageError."""
    from hydra.errors import HydraException

    parsed = []
    for override in overrides:
        try:
            parsed += parser.parse_overrides([override])
        except HydraException as err:
            raise UsageError(f"malformed override {override!r}: {one_line(err)} ({GRAMMAR_HINT})") from None
    return parsed


def key_of(override) -> str:
    """The key an override sets, without its +, ++ or ~ prefix."""
    return override.get_key_element().lstrip("+~")


def spell_out_params(overrides: list[str], parser) -> list[str]:
    """Replace each `hydra.sweeper.params={...}` by the overrides it stands for, placed first."""
    params: list[str] = []
    rest: list[str] = []
    for text, override in zip(overrides, parse(overrides, parser), strict=True):
        if key_of(override) != PARAMS_KEY or override.is_delete():
            rest.append(text)
            continue
        value = override.value()
        if not isinstance(value, dict):
            raise UsageError(
                f"bad override: {text}: {PARAMS_KEY} takes a mapping of KEY: VALUES, e.g. "
                f"'{PARAMS_KEY}={{model.dropout_ratio:\"0.1,0.3\"}}'"
            )
        for key, values in value.items():
            if isinstance(values, (dict, list)):
                raise UsageError(
                    f"bad override: {text}: the value of {key} must be a string of sweep values such as "
                    f'"0.1,0.3" or "range(1,4)", got {values!r}'
                )
            params.append(f"{key}={values}")
    return [*params, *rest]


def quote(value: str) -> str:
    """A string as a quoted Hydra override value, taken literally (no interpolation)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${") + "'"
