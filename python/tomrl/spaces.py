"""Box spaces: Gymnasium's own where gymnasium is installed, else a stand-in with the same
attributes (shape, dtype, low, high) and methods (sample, contains, seed)."""
import numpy as np

try:
    from gymnasium.spaces import Box
except ImportError:  # gymnasium is optional

    class Box:
        """A box in R^n with bounds low and high (possibly infinite), Gymnasium's fields."""

        def __init__(self, low, high, shape=None, dtype=np.float32, seed=None):
            self.dtype = np.dtype(dtype)
            if shape is None:
                shape = np.shape(low)
            self.shape = tuple(int(n) for n in shape)
            self.low = np.broadcast_to(np.asarray(low, dtype=self.dtype), self.shape).copy()
            self.high = np.broadcast_to(np.asarray(high, dtype=self.dtype), self.shape).copy()
            if np.any(self.low > self.high):
                raise ValueError("Box: low must not exceed high")
            self.seed(seed)

        def seed(self, seed=None):
            self.np_random = np.random.default_rng(seed)
            return [seed]

        def sample(self):
            """Uniform inside finite bounds, normal where both are infinite, exponential
            beyond a single finite bound (Gymnasium's rule)."""
            low, high = self.low.astype(np.float64), self.high.astype(np.float64)
            out = np.empty(self.shape, dtype=np.float64)
            bounded = np.isfinite(low) & np.isfinite(high)
            unbounded = ~np.isfinite(low) & ~np.isfinite(high)
            lower_only = np.isfinite(low) & ~np.isfinite(high)
            upper_only = ~np.isfinite(low) & np.isfinite(high)
            out[bounded] = self.np_random.uniform(low[bounded], high[bounded])
            out[unbounded] = self.np_random.normal(size=int(unbounded.sum()))
            out[lower_only] = low[lower_only] + self.np_random.exponential(size=int(lower_only.sum()))
            out[upper_only] = high[upper_only] - self.np_random.exponential(size=int(upper_only.sum()))
            return out.astype(self.dtype)

        def contains(self, x):
            x = np.asarray(x)
            return (x.shape == self.shape and np.can_cast(x.dtype, self.dtype, casting="same_kind")
                    and bool(np.all(x >= self.low)) and bool(np.all(x <= self.high)))

        __contains__ = contains

        def __eq__(self, other):
            return (isinstance(other, Box) and self.shape == other.shape and self.dtype == other.dtype
                    and np.array_equal(self.low, other.low) and np.array_equal(self.high, other.high))

        def __repr__(self):
            return f"Box({self.low.min()}, {self.high.max()}, {self.shape}, {self.dtype})"
