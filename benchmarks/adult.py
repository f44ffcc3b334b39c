"""UCI Adult as a pandas frame with a 0/1 `income` label (for the training benchmarks); the files ship
with the package (governance/data, see its PROVENANCE.md) because `govern demo` uses them too."""

from governance.demo import load_adult

__all__ = ["load_adult"]
