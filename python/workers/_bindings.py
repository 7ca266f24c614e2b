"""The objects in `env`: config `vars`, secrets (.dev.vars in `thaw dev`),
and one object per binding the config declares. Each binding kind is a
module here exporting `bindings_from_config(config)`, which yields
(name, object) pairs; its supervisor side is src/bind/<kind>.c."""
import importlib

# One module per kind, in the order src/bind/kinds.h opens them.
KIND_MODULES = (
    "workers._kv",
    "workers._d1",
    "workers._assets",
    "workers._durable",
)


def env_mapping(config):
    mapping = dict(config.get("vars") or {})
    mapping.update(config.get("_thaw_secrets") or {})
    for modname in KIND_MODULES:
        module = importlib.import_module(modname)
        for name, obj in module.bindings_from_config(config):
            mapping[name] = obj
    return mapping


def secret_names(config):
    return frozenset(config.get("_thaw_secrets") or ())
