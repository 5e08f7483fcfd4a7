pub mod gluster;
pub mod registry;
