//! `promote`, the Docker side: the bench image built with the machine's Docker engine (FROM
//! scratch, one `COPY` per layer of random bytes) and pushed, and the seed's way of promoting
//! it (`docker pull` + `docker tag` + `docker push` per stage, the local image removed before
//! each pull so every stage downloads it, as CodeBuild's fresh machine does).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::registry::noise;

/// A Docker client configuration of its own (logged in to the bench registry), and the local
/// images the bench created, removed on drop.
pub struct Docker {
    config: PathBuf,
    images: Vec<String>,
}

impl Docker {
    /// Logs a fresh Docker configuration in `dir` in to `host` as `user`.
    pub fn login(dir: &Path, host: &str, user: &str, password: &str) -> anyhow::Result<Docker> {
        let docker = Docker {
            config: dir.join("docker-config"),
            images: Vec::new(),
        };
        let mut login = Command::new("docker")
            .arg("--config")
            .arg(&docker.config)
            .args(["login", "-u", user, "--password-stdin", host])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("running docker (the promote bench needs a Docker engine)")?;
        login
            .stdin
            .take()
            .context("docker login stdin")?
            .write_all(password.as_bytes())?;
        let output = login.wait_with_output()?;
        if !output.status.success() {
            bail!(
                "docker login {host}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(docker)
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new("docker")
            .arg("--config")
            .arg(&self.config)
            .args(args)
            // The classic builder: its cache is the image's own parent chain, which `docker rmi`
            // removes, so no build cache can hand a later `docker pull` its layers.
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .context("running docker")?;
        if !output.status.success() {
            bail!(
                "docker {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Removes `image` locally (its layers with it); absent is fine.
    fn remove(&self, image: &str) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Builds `image` FROM scratch with `layers` layers of `megabytes` MB of random bytes in
    /// all (different in every bench run, so nothing local can already hold them), pushes it
    /// and removes it locally.
    pub fn build_and_push(
        &mut self,
        dir: &Path,
        image: &str,
        megabytes: usize,
        layers: usize,
    ) -> anyhow::Result<()> {
        let context = dir.join("image");
        std::fs::create_dir_all(&context)?;
        let mut dockerfile = String::from("FROM scratch\n");
        let seed = u64::from(std::process::id()) << 8;
        for n in 0..layers {
            let bytes = noise(megabytes * 1024 * 1024 / layers, seed + n as u64);
            std::fs::write(context.join(format!("layer-{n}")), bytes)?;
            dockerfile.push_str(&format!("COPY layer-{n} /layer-{n}\n"));
        }
        std::fs::write(context.join("Dockerfile"), dockerfile)?;
        self.images.push(image.to_owned());
        self.run(&[
            "build",
            "-q",
            "-t",
            image,
            context.to_str().context("non-UTF-8 temp path")?,
        ])?;
        std::fs::remove_dir_all(&context)?;
        self.run(&["push", "-q", image])?;
        self.remove(image);
        Ok(())
    }

    /// The seed's promotion: for each `(from, to)` stage, remove every local image of the
    /// bench, `docker pull` from, `docker tag` to, `docker push` to. Returns the seconds of each stage.
    pub fn seed_promotion(&mut self, stages: &[(&str, &str)]) -> anyhow::Result<Vec<f64>> {
        let mut seconds = Vec::new();
        for &(from, to) in stages {
            // Every name the pulled image had, or its layers stay behind under another tag.
            self.images.extend([from.to_owned(), to.to_owned()]);
            for image in &self.images {
                self.remove(image);
            }
            let t = Instant::now();
            let pulled = self.run(&["pull", from])?;
            self.run(&["tag", from, to])?;
            self.run(&["push", "-q", to])?;
            seconds.push(t.elapsed().as_secs_f64());
            if pulled.contains("Already exists") {
                bail!("docker pull {from} found layers locally, so it measured no download");
            }
        }
        Ok(seconds)
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        for image in &self.images {
            self.remove(image);
        }
    }
}
