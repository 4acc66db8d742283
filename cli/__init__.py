"""featcache.cli: thin click commands over featcache.pipelines.

Installed as ``featcache.cli`` (setuptools package-dir); never import it as ``cli``.
"""
