//! The Cloud Agents API's model (`/v0`, after `seeds/cloud-agents-api.md`,
//! compatible with Cursor's v0 API): what a client sends and sees, and the
//! one mapping from a session to an agent.
//!
//! An agent *is* a session plus what a session does not keep: its owner,
//! its name, the launch's source and target as the client gave them, and
//! its webhook. Nothing here touches the database or HTTP: the store keeps
//! the rows ([`AgentRecord`]) and the API serves the views built here, so
//! the status table of the seed lives in exactly one function
//! ([`status`]).

mod page;
mod view;
mod wire;

pub(crate) use page::PageCursor;
pub(crate) use view::{
    agent_name, agent_view, source_repository, status, status_change_body, AgentRecord, LaunchFlags,
};
pub(crate) use wire::{
    Agent, AgentId, AgentList, Conversation, ConversationMessage, FollowupRequest, Launch, Models,
    Prompt,
};
