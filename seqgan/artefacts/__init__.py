"""On-disk formats every layer reads and writes: prepared image splits, token arrays, sample sets,
checkpoints with their JSON sidecars, manifests, atomic writes and provenance. The lowest layer
(with :mod:`seqgan.config`): it imports no other part of the package."""
