//! `jobs dead|retry|purge-dead`: the dead-letter lists, one per language, of jobs
//! that failed after all their attempts (a platform failure each time, never a
//! verdict of the program).

use anyhow::bail;
use clap::Subcommand;
use optimus_common::store::ReviveOutcome;
use optimus_common::LanguageRegistry;
use uuid::Uuid;

use crate::keys::connect;

#[derive(Subcommand)]
pub enum Jobs {
    /// List the dead-lettered jobs, newest first, with each attempt's error.
    Dead {
        /// Only this language's.
        #[arg(long)]
        language: Option<String>,
    },
    /// Give dead-lettered jobs a new set of attempts: they go to the front of their queue.
    Retry {
        /// The job's id.
        #[arg(required_unless_present = "all_dead", conflicts_with = "all_dead")]
        id: Option<Uuid>,
        /// Every dead-lettered job (of --language, if given).
        #[arg(long)]
        all_dead: bool,
        #[arg(long)]
        language: Option<String>,
    },
    /// Empty the dead-letter lists (the job records stay until their TTL).
    PurgeDead {
        #[arg(long)]
        language: Option<String>,
    },
}

fn languages(registry: &LanguageRegistry, only: Option<&str>) -> anyhow::Result<Vec<String>> {
    match only {
        Some(name) => Ok(vec![registry.get(name)?.name.clone()]),
        None => Ok(registry.languages().iter().map(|l| l.name.clone()).collect()),
    }
}

pub async fn run(config: &std::path::Path, command: Jobs) -> anyhow::Result<()> {
    let registry = LanguageRegistry::load(config)?;
    let store = connect().await?;
    match command {
        Jobs::Dead { language } => {
            let mut total = 0;
            for lang in languages(&registry, language.as_deref())? {
                for (id, letter) in store.dead_letters(&lang).await? {
                    total += 1;
                    let Some(letter) = letter else {
                        println!("{id}  {lang:<10}  (record expired)");
                        continue;
                    };
                    println!(
                        "{id}  {lang:<10}  {}  {} attempts  finished {}",
                        letter.status, letter.attempts, letter.finished_at
                    );
                    for a in &letter.attempt_errors {
                        println!("    attempt {} at {}: {}", a.attempt, a.at, a.error);
                    }
                }
            }
            if total == 0 {
                println!("no dead-lettered jobs");
            }
        }
        Jobs::Retry { id, all_dead, language } => {
            let langs = languages(&registry, language.as_deref())?;
            let mut targets = Vec::new();
            for lang in &langs {
                for (dead, _) in store.dead_letters(lang).await? {
                    if all_dead || Some(dead) == id {
                        targets.push((dead, lang.clone()));
                    }
                }
            }
            if let (Some(id), true) = (id, targets.is_empty()) {
                bail!("job {id} is not on a dead-letter list; `optimus-cli jobs dead` lists them");
            }
            let mut requeued = 0;
            for (id, lang) in &targets {
                match store.revive(*id, lang).await? {
                    ReviveOutcome::Requeued => {
                        requeued += 1;
                        println!("{id}  {lang}: back in its queue with new attempts");
                    }
                    ReviveOutcome::Expired => println!("{id}  {lang}: its record expired; dropped from the list"),
                    ReviveOutcome::NotFailed(status) => {
                        println!("{id}  {lang}: it is '{status}', not failed; dropped from the list")
                    }
                }
            }
            println!("{requeued} of {} dead-lettered jobs requeued", targets.len());
        }
        Jobs::PurgeDead { language } => {
            let mut total = 0;
            for lang in languages(&registry, language.as_deref())? {
                let n = store.purge_dead(&lang).await?;
                if n > 0 {
                    println!("{lang}: {n} dropped");
                }
                total += n;
            }
            println!("{total} dead-lettered jobs dropped from the lists");
        }
    }
    Ok(())
}
