"""The operator's hands on the catalog: pin, forget, info.

These use cases act on backups of any engine through the catalog alone
(manifests, the retention decision, prune's deletion), so they live in
the application layer beside ``seawall.app.prune`` rather than in an engine
package.
"""
