//! Relational records: profiles, entities, vaults, todos, tips, conversations, messages,
//! message thinking and monitoring.
