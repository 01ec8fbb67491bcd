//! One module per area; each was its own test binary before.

mod agent_loop;
mod cli_call;
mod cli_doctor;
mod cli_policy_audit;
mod cli_run;
mod cli_tools;
mod cli_up;
mod cloud_agents;
mod images;
mod module_layers;
mod oauth;
mod observability;
mod repo_list;
mod repositories;
mod sandbox_escape;
mod sandbox_network;
mod schedules;
mod service;
mod session_loop;
mod stop;
mod tls;
mod toolchains;
mod web_pages;
mod webhooks;
mod websearch;
