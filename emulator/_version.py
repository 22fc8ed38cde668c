"""The package version, in a module of its own so that any part can import it without importing the
package (and, through it, the app and everything the app composes)."""

__version__ = "0.1.0"
