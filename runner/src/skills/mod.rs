//! Skills: each skill pinned in the agent version is fetched under the
//! claim, checked against its pinned hash, and placed read-only under the
//! session's skills root (`/skills/<name>/` in both sandboxes); the system
//! prompt lists each skill's name and description.
