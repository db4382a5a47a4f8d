"""Speed and accuracy benchmarks; ``python -m benchmarks`` reruns all and updates results.json."""
