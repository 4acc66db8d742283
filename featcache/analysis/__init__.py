"""featcache.analysis: what the cached layers know and how models relate.

- :mod:`~featcache.analysis.probe`: scikit-learn layer probes and cross-validated scores per layer;
- :mod:`~featcache.analysis.cka`: linear CKA in minibatches (memory independent of frames);
- :mod:`~featcache.analysis.select`: rank upstream subsets by strength and complementarity;
- :mod:`~featcache.analysis.report`: one self-contained HTML report.

Submodules are imported on use (probe imports scikit-learn, report matplotlib).
"""
