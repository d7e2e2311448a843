"""Registry of architectures: ``@register("unet")`` builders and ``build_model(arch, **options)``."""
import dataclasses
import inspect

_REGISTRY = {}


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """One registered architecture: its builder, description, fixed options and own defaults."""

    name: str
    builder: object
    description: str
    preset: dict
    defaults: dict

    @property
    def options(self):
        """Option name -> default value, in the builder's order (preset options left out)."""
        parameters = inspect.signature(self.builder).parameters.values()
        return {p.name: self.defaults.get(p.name, p.default) for p in parameters if p.name not in self.preset}

    def build(self, **options):
        """Build the model; unknown options raise a ``ValueError`` listing the valid ones."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(unknown)} for arch {self.name!r}; "
                f"valid options: {', '.join(self.options)}"
            )
        return self.builder(**self.preset, **{**self.defaults, **options})


def register(name, description=None, defaults=None, **preset):
    """Decorator registering ``builder`` as arch ``name``.

    ``preset`` fixes builder options for this arch (e.g. ``batch_norm=True`` for ``unet_modified``),
    ``defaults`` overrides the builder's defaults; ``description`` defaults to the first line of
    the builder's docstring.
    """

    def decorator(builder):
        if name in _REGISTRY:
            raise ValueError(f"arch {name!r} is already registered")
        text = description or inspect.getdoc(builder).splitlines()[0]
        _REGISTRY[name] = ArchSpec(name, builder, text, dict(preset), dict(defaults or {}))
        return builder

    return decorator


def get_spec(arch):
    """The ``ArchSpec`` of ``arch``; a ``ValueError`` listing the registered archs otherwise."""
    try:
        return _REGISTRY[arch]
    except KeyError:
        raise ValueError(f"unknown arch {arch!r}; registered archs: {', '.join(_REGISTRY)}") from None


def list_models():
    """Every registered ``ArchSpec``, in registration order."""
    return list(_REGISTRY.values())


def build_model(arch, **options):
    """Build architecture ``arch`` (see ``list_models()``) with ``options`` as a ``keras.Model``."""
    return get_spec(arch).build(**options)
