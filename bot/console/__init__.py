"""The web console (`dhbot serve`): ops staff upload a job, look at its dry run, have a
second person approve it, and watch it run, in a browser, over the same engine.

- `store`: the console's records in the ledger (users, jobs, the audit trail).
- `intake`: an upload or pasted order numbers -> a job file dhbot runs, or line-numbered
  problems in Chinese and English.
- `work`: dry runs and runs in the background, as `dhbot run` (or `dhbot submit`) would do
  them, one at a time per account.
- `app`: the pages (Starlette, Jinja2): sign-in, CSRF, throttling, roles.
- `command`: `dhbot serve` and `dhbot user`.
"""
