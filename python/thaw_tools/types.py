"""`thaw types [DIR] [-o OUT]`: write .pyi stubs for a worker.

OUT (default `typings`, relative to DIR unless absolute) gets:

- env.pyi: `class Env` with one read-only attribute per [vars] entry
  (str, int, float, bool, dict[str, Any], list[Any]) and per binding the
  config declares (KV namespaces, R2 buckets, services, ...), typed with the
  SDK's class for that kind when `workers` has one, else Any;
- workers/ (with asgi and wsgi), asgi.pyi, js.pyi, pyodide/ (ffi, http): the
  SDK thaw provides, with `WorkerEntrypoint.env` typed as that Env, so mypy
  flags a misspelt `self.env.NAME`.

Point mypy at OUT (`mypy_path = "typings"` in [tool.mypy], as `thaw init`
writes it); pyright reads ./typings by default.
"""
import ast
import keyword
import os
from importlib import resources

from .project import ToolError, read_config

USAGE = "usage: thaw types [DIR] [-o OUT]"

# config key -> (what, how a binding is listed, SDK class name)
# how: "list" = [[key]] tables with `binding`; "table" = one [key] table
# with `binding`; a tuple (sub, field) = [[key.sub]] tables with `field`.
BINDINGS = {
    "kv_namespaces": ("KV namespace", "list", "KVNamespace"),
    "r2_buckets": ("R2 bucket", "list", "R2Bucket"),
    "d1_databases": ("D1 database", "list", "D1Database"),
    "durable_objects": ("Durable Object namespace", ("bindings", "name"),
                        "DurableObjectNamespace"),
    "services": ("service binding", "list", "Fetcher"),
    "queues": ("Queue producer", ("producers", "binding"), "Queue"),
    "vectorize": ("Vectorize index", "list", "VectorizeIndex"),
    "hyperdrive": ("Hyperdrive config", "list", "Hyperdrive"),
    "analytics_engine_datasets": ("Analytics Engine dataset", "list",
                                  "AnalyticsEngineDataset"),
    "dispatch_namespaces": ("dispatch namespace", "list", "DispatchNamespace"),
    "mtls_certificates": ("mTLS certificate", "list", "Fetcher"),
    "send_email": ("send_email binding", ("", "name"), "SendEmail"),
    "workflows": ("Workflow", "list", "Workflow"),
    "secrets_store_secrets": ("Secrets Store secret", "list", "SecretsStoreSecret"),
    "ai": ("Workers AI", "table", "Ai"),
    "browser": ("Browser Rendering", "table", "Fetcher"),
    "images": ("Images", "table", "ImagesBinding"),
    "version_metadata": ("version metadata", "table", "WorkerVersionMetadata"),
    "assets": ("static assets binding", "table", "Fetcher"),
}


def parse_args(argv):
    d, out = None, None
    it = iter(argv)
    for a in it:
        if a in ("-o", "--out", "--output"):
            out = next(it, None)
            if out is None:
                raise ToolError(f"{a} needs a directory\n{USAGE}")
        elif a.startswith("--out=") or a.startswith("--output="):
            out = a.split("=", 1)[1]
        elif a.startswith("-o") and len(a) > 2:
            out = a[2:]
        elif a in ("-h", "--help"):
            print(USAGE + "\n")
            print(__doc__.split("\n\n", 1)[1].rstrip())
            raise SystemExit(0)
        elif a.startswith("-"):
            raise ToolError(f"unknown option {a}\n{USAGE}")
        elif d is None:
            d = a
        else:
            raise ToolError(f"unexpected argument {a}\n{USAGE}")
    return d or ".", out or "typings"


def stub_root():
    return resources.files(__package__) / "stubs"


def sdk_classes():
    """Public class names of the workers stub (which mirrors the SDK)."""
    tree = ast.parse((stub_root() / "workers" / "__init__.pyi").read_text("utf-8"))
    return {n.name for n in tree.body
            if isinstance(n, ast.ClassDef) and not n.name.startswith("_")}


def var_type(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, dict):
        return "dict[str, Any]"
    if isinstance(value, list):
        return "list[Any]"
    return "Any"


def bindings(cfg):
    """[(name, config key, what, sdk class)] in config order."""
    out = []
    for key, (what, how, cls) in BINDINGS.items():
        value = cfg.get(key)
        if value is None:
            continue
        if how == "table":
            entries, field = [value], "binding"
        elif how == "list":
            entries, field = value, "binding"
        else:
            sub, field = how
            entries = value.get(sub) if sub and isinstance(value, dict) else value
        if isinstance(entries, dict):
            entries = [entries]
        for e in entries or ():
            if isinstance(e, dict) and isinstance(e.get(field), str):
                out.append((e[field], key, what, cls))
    return out


def secret_names(d):
    """Names in the worker's .dev.vars (KEY=value lines); never the values.
    A quoted value spanning lines is skipped over, so its later lines are
    not taken for names."""
    path = os.path.join(d, ".dev.vars")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return []
    names, quote = [], None
    for line in text.splitlines():
        if quote:
            if line.rstrip().split("#")[0].rstrip().endswith(quote):
                quote = None
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        if stripped.startswith("export "):
            stripped = stripped[7:]
        name, _, value = stripped.partition("=")
        names.append(name.strip())
        value = value.strip()
        if value[:1] in ("'", '"') and (len(value) == 1 or not value.rstrip().endswith(value[0])):
            quote = value[0]
    return names


def attr_ok(name):
    return name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("__")


def render_env(cfg_path, cfg):
    have = sdk_classes()
    lines = [f"# Generated by `thaw types` from {os.path.basename(cfg_path)}: run it again "
             "after editing the config.",
             "from collections.abc import Iterator",
             "from typing import Any",
             ""]
    body, imports, skipped = [], set(), []
    seen = set()
    vars_ = cfg.get("vars") or {}
    if not isinstance(vars_, dict):
        raise ToolError(f"{cfg_path}: vars must be a table")
    if vars_:
        body.append("    # [vars]")
    for name, value in vars_.items():
        if not attr_ok(name):
            skipped.append(name)
            continue
        seen.add(name)
        body += ["    @property",
                 f"    def {name}(self) -> {var_type(value)}: ..."]
    secrets = [n for n in secret_names(os.path.dirname(cfg_path)) if n not in seen]
    if secrets:
        body.append("    # .dev.vars: secrets (names only; values stay out of this file)")
    for name in secrets:
        if not attr_ok(name):
            skipped.append(name)
            continue
        seen.add(name)
        body += ["    @property", f"    def {name}(self) -> str: ..."]
    for name, key, what, cls in bindings(cfg):
        if not attr_ok(name):
            skipped.append(name)
            continue
        if name in seen:
            continue
        seen.add(name)
        if cls in have:
            imports.add(cls)
            body += [f"    # {key}: a {what}", "    @property",
                     f"    def {name}(self) -> {cls}: ..."]
        else:
            body += [f"    # {key}: a {what}. Any: thaw's SDK has no class for it, and "
                     "this thaw does",
                     "    # not provide the binding yet (`thaw dev` warns and ignores "
                     f"`{key}`)",
                     "    @property",
                     f"    def {name}(self) -> Any: ..."]
    if imports:
        lines.insert(3, f"from workers import {', '.join(sorted(imports))}")
    lines.append("class Env:")
    lines.append('    """The worker\'s env (self.env, or the env argument of a '
                 'legacy handler)."""')
    if skipped:
        lines.append("    # not attribute names, reachable as env[\"...\"] only: "
                     + ", ".join(skipped))
    lines += body
    lines += ["    def __getitem__(self, name: str) -> Any: ...",
              "    def __contains__(self, name: object) -> bool: ...",
              "    def __iter__(self) -> Iterator[str]: ...",
              "    def __len__(self) -> int: ..."]
    return "\n".join(lines) + "\n"


def copy_tree(node, dest, written):
    os.makedirs(dest, exist_ok=True)
    for child in node.iterdir():
        target = os.path.join(dest, child.name)
        if child.is_dir():
            if child.name != "__pycache__":
                copy_tree(child, target, written)
        elif child.name.endswith(".pyi"):
            with open(target, "w", encoding="utf-8") as f:
                f.write(child.read_text("utf-8"))
            written.append(target)


def types(d, out):
    cfg_path, cfg = read_config(d)
    out_dir = out if os.path.isabs(out) else os.path.join(d, out)
    written = []
    copy_tree(stub_root(), out_dir, written)
    env_path = os.path.join(out_dir, "env.pyi")
    with open(env_path, "w", encoding="utf-8") as f:
        f.write(render_env(cfg_path, cfg))
    written.append(env_path)
    n_vars = len(cfg.get("vars") or {})
    n_bind = len(bindings(cfg))
    shown = os.path.relpath(out_dir)
    if shown.startswith(".."):
        shown = os.path.abspath(out_dir)
    print(f"thaw types: wrote {shown}/ (env.pyi: {n_vars} var(s), "
          f"{n_bind} binding(s); workers, asgi, js)")
    return 0


def main(argv):
    d, out = parse_args(argv)
    return types(d, out)
