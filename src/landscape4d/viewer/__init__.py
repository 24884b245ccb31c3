"""Web viewer of the 4D scene (Spark / three.js page bundled from viewer/web/) and its `view`/`export` commands."""
