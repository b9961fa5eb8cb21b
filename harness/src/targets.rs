//! The mock targets as `scimlab up` and `ci` run them: mock-space and mock-teamcity, each with
//! its SCIM connector and default policy, on loopback ports chosen by the system.

use std::path::PathBuf;

/// Both mocks, running.
#[derive(Debug)]
pub struct Targets {
    pub space: mock_space::Launched,
    pub teamcity: mock_teamcity::Launched,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetsError {
    #[error("cannot start mock-space: {0}")]
    Space(#[from] mock_space::LaunchError),
    #[error("cannot start mock-teamcity: {0}")]
    TeamCity(#[from] mock_teamcity::LaunchError),
}

impl Targets {
    /// Starts both; `data` `None` keeps everything in memory; `durable` flushes before answering.
    pub async fn start(
        data: Option<PathBuf>,
        token: &str,
        durable: bool,
    ) -> Result<Targets, TargetsError> {
        let space = mock_space::launch(mock_space::Options {
            port: 0,
            scim_port: 0,
            data: data.clone(),
            token: token.into(),
            scim_token: token.into(),
            policy: mock_space::Policy::default_policy(),
            durable,
            lenient: false,
        })
        .await?;
        let teamcity = mock_teamcity::launch(mock_teamcity::Options {
            target: mock_teamcity::Target::Simulator { port: 0 },
            scim_port: 0,
            data,
            token: token.into(),
            scim_token: token.into(),
            policy: mock_teamcity::Policy::default_policy(),
            durable,
            lenient: false,
        })
        .await?;
        Ok(Targets { space, teamcity })
    }

    pub async fn stop(self) {
        self.teamcity.stop().await;
        self.space.stop().await;
    }
}
