"""featcache.pipelines: the stages (extract, train, analyse) and declarative recipes.

Installed as ``featcache.pipelines`` (setuptools package-dir); never import it as ``pipelines``.
"""
