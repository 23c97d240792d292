"""The engine-free core: pure functions of (state, event) -> (state, outputs). No Beam or Flink imports here."""
