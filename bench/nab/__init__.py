"""NAB (Numenta Anomaly Benchmark) scorer and backtest of the recommended anomaly rule."""
