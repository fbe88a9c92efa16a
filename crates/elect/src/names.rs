//! How messages name what a user can change. The library speaks in its own
//! terms by default (its builder's methods); a program with its own flags,
//! such as electd, gives its words instead, so that a message tells its users
//! what they can type.

/// The names messages use for settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Names {
    /// The program, as in "restart it".
    pub program: String,
    /// Where the CA file is set.
    pub ca_file: String,
    /// Where the client certificate and key are set.
    pub client_cert: String,
    /// Where the etcd user is set.
    pub user: String,
    /// Where a candidate's id is set.
    pub id: String,
    /// How to choose etcd's v3 API.
    pub api_v3: String,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            program: "the program".to_owned(),
            ca_file: "ConfigBuilder::ca_file".to_owned(),
            client_cert: "ConfigBuilder::client_cert".to_owned(),
            user: "ConfigBuilder::credentials".to_owned(),
            id: "ConfigBuilder::id".to_owned(),
            api_v3: "Api::V3".to_owned(),
        }
    }
}

impl Names {
    /// The library's own names, with `program` as the program's.
    pub fn for_program(program: impl Into<String>) -> Names {
        Names {
            program: program.into(),
            ..Names::default()
        }
    }
}
