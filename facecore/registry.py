"""A small name -> class registry, so adding a detector, embedder or store is one file.

A registry may be tied to a package: the first time its names are asked for, every public module of
that package is imported, and the classes they decorate with ``@REGISTRY.register("name")`` appear.
So a new detector is a new file in ``facecore/detection/``; nothing else lists it. Importing the
registry itself imports none of them (no import-time side effects).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps short names (``"hog"``, ``"dlib-keras"``) to the classes that implement them."""

    def __init__(self, kind: str, package: str | None = None) -> None:
        self.kind = kind
        self.package = package
        self._classes: dict[str, type[T]] = {}
        self._discovered = package is None

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorator(cls: type[T]) -> type[T]:
            if name in self._classes and self._classes[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._classes[name] = cls
            cls.name = name  # type: ignore[attr-defined]
            return cls

        return decorator

    def _discover(self) -> None:
        """Import every public module of the package once, so its classes register themselves."""
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)  # type: ignore[arg-type]
        for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
            if not module.startswith("_"):
                importlib.import_module(f"{self.package}.{module}")

    def get(self, name: str) -> type[T]:
        self._discover()
        try:
            return self._classes[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise KeyError(f"unknown {self.kind} {name!r}; choose one of: {known}") from None

    def create(self, name: str, **options: Any) -> T:
        return self.get(name)(**options)

    def names(self) -> list[str]:
        """Registered names, in the order of the classes' ``order`` attribute, then by name."""
        self._discover()
        return sorted(self._classes, key=lambda n: (getattr(self._classes[n], "order", 100), n))

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._classes
