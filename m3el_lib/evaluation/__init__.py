"""Chapter 3 and 5's numbers: scorers that rank candidates (`scoring`), the 9-task metrics with
tie rule and bootstrap intervals (`metrics`), the baselines (`baselines`) and the pipelines that
load a dataset and model, evaluate and write results with provenance (`pipeline`)."""
