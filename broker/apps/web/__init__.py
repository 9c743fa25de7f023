"""The ketenbus web app: the secure-bed dashboard, the operations page and the compliance
officer's audit search, with sign-in and roles. Templates and static assets live in this
package; nothing is loaded from elsewhere."""
