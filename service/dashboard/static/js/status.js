// The experiment statuses, in the order a list filters them, and the ones that end a run.
// The server's own sets are core.store.models.Status and TERMINAL; a test keeps them equal
// (tests/service/test_dashboard.py).
export const STATUSES = ["queued", "running", "cancelling", "paused", "succeeded", "failed", "cancelled", "pruned"];
export const TERMINAL = new Set(["succeeded", "failed", "cancelled", "pruned"]);
