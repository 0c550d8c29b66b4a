#!/usr/bin/env python3
"""Build the pretraining corpus of real audio from Debian packages.

For every package in SOURCES: `apt-get download` the .deb, unpack only its
audio (or the archive holding its audio), decode each file, mix to mono,
resample to 16 kHz, cut into chunks of at most --max-chunk seconds and write
FLAC files to OUT/audio/<category>/<package>/. Each finished package gets a
manifest part OUT/parts/<package>.csv, so re-running skips it. The parts are
joined into OUT/manifest.csv and a summary (hours per package and category)
is printed.

Example:  nice -n 10 python3 scripts/data/build_corpus.py --out DATA/corpus
"""
import argparse
import csv
import hashlib
import math
import os
import re
import shutil
import sys
import zipfile
from collections import defaultdict

import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import containers as ct  # noqa: E402
import debaudio as da  # noqa: E402
import phrases  # noqa: E402

AUDIO = ct.AUDIO
AUDIO_ALS = r"\.ALS$"
TRACKER_AND_FILES = ct.chain(ct.tracker(), ct.files())

# package -> (tar patterns, where the audio is, [(regex on file path, category)]);
# first rule that matches wins; no match or category None = skipped.
# Where the audio is: None = audio files on disk, rules see "/" + their path;
# a path = a zip archive inside the package, rules see the member name;
# a reader from containers.py = rules see "/" + the path it yields.
SOURCES = {
    "wesnoth-1.16-music": (["*.ogg"], None, [(AUDIO, "music")]),
    "warzone2100-music": (["*.opus"], None, [(AUDIO, "music")]),
    "hedgewars-data": (["*.ogg"], None, [
        ("/Music/", "music"), ("/voices/", "speech"), ("/Sounds/", "sfx")]),
    "0ad-data": (["*public.zip"], "usr/share/games/0ad/mods/public/public.zip", [
        *[(rx, None) for rx, _ in da.ZEROAD_HELDOUT],  # held out for the zeroad_sfx dev set
        ("^audio/music/", "music"), ("^audio/voice/", "speech"), ("^audio/", "sfx")]),
    "warzone2100-data": (["*base.wz"], "usr/share/games/warzone2100/base.wz", [
        ("^sequenceaudio/|^audio/(memressp|tutorial|taunts|vtoltalk|proxmessages|countdown"
         "|coltive|nexus|trnsppil|multi)/", "speech"), ("^audio/", "sfx")]),
    "freedroidrpg-data": (["*.ogg"], None, [
        ("/music/|/titles/", "music"), ("voice_samples|tux_ingame_comments", "speech"),
        ("/sound/", "sfx")]),
    "megaglest-data": (["*.ogg", "*.wav"], None, [
        ("/music/", "music"), (r"_ack\d*\.wav$", "speech"), (AUDIO, "sfx")]),
    "supertux-data": (["*.ogg", "*.wav"], None, [
        ("/music/", "music"), ("/speech/", "speech"), (AUDIO, "sfx")]),
    "frozen-bubble-data": (["*.ogg"], None, [("zik", "music"), (AUDIO, "sfx")]),
    "sonic-pi-samples": (["*.flac", "*.wav"], None, [("/samples/", "music")]),
    "fillets-ng-data": (["*.ogg"], None, [("/music/", "music"), ("/sound/[^/]+/[a-z]{2}/", "speech"),
                                          (AUDIO, "sfx")]),
    "fillets-ng-data-cs": (["*.ogg"], None, [(AUDIO, "speech")]),
    "fillets-ng-data-nl": (["*.ogg"], None, [(AUDIO, "speech")]),
    "klettres-data": (["*.ogg"], None, [(AUDIO, "speech")]),
    # speech
    "flight-of-the-amazon-queen": (["*queen.1c"], ct.queen_1c(), [(r"\.SB$", "speech")]),
    "tuxpaint-stamps-default": (["*.ogg", "*.wav"], ct.files(), [
        ("_desc|/symbols/(alphabets|math)/", "speech"), (AUDIO, "sfx")]),  # spoken letters and digits
    # Drascula: S*.ALS are the sound effects (the same in every language: English only),
    # the other .ALS files are the characters' lines.
    "drascula": (["*.ALS"], ct.drascula_als(), [(r"/S\d+\.ALS$", "sfx"), (AUDIO_ALS, "speech")]),
    "drascula-spanish": (["*.ALS"], ct.drascula_als(), [(r"/S\d+\.ALS$", None), (AUDIO_ALS, "speech")]),
    "drascula-italian": (["*.ALS"], ct.drascula_als(), [(r"/S\d+\.ALS$", None), (AUDIO_ALS, "speech")]),
    "festvox-ru": (["*.wav"], None, [("/wav/", "speech")]),
    "qabcs-data": (["*.ogg"], ct.files(), [("/sounds/(alpha|words)/", "speech"), ("/noises/", "sfx")]),
    "gcin-voice": (["*.ogg"], ct.files(), [(AUDIO, "speech")]),
    "codec2-examples": (["*/wav/*.wav"], ct.files(), [(AUDIO, "speech")]),
    # sound effects (and the music / voices that come with them)
    "ufoai-sound": (["*.pk3"], ct.zips(r"\.pk3$"), [("/sound/", "sfx")]),
    "nexuiz-data": (["*.pk3"], ct.zips(r"\.pk3$"), [
        ("/sound/(announcer|tutorial)/", "speech"), ("/sound/", "sfx")]),
    "redeclipse-data": (["*/sounds/*.ogg"], ct.files(), [
        ("/sounds/music/|/sounds/[^/]+$", "music"), ("/sounds/announcer/", "speech"),
        ("/sounds/", "sfx")]),
    "btanks-data": (["*.ogg"], ct.files(), [("/tunes/", "music"), ("/sounds/", "sfx")]),
    "scorched3d-data": (["*.ogg", "*.wav"], ct.files(), [("/music/", "music"), ("/wav/", "sfx")]),
    "widelands-data": (["*.ogg"], ct.files(), [("/data/music/", "music"),
                                               ("/data/sound/|/critters/", "sfx")]),
    "supertuxkart-data": (["*/data/music/*.ogg", "*/data/sfx/*.ogg", "*/data/tracks/*.ogg", "*/data/library/*.ogg",
                           "*/data/karts/*.ogg"], ct.files(), [
        ("/data/music/", "music"), ("/data/sfx/", "sfx"),
        # effects placed on tracks: animals, two steam locomotive recordings (their waveforms do not match),
        # the intro's spaceship (introcutscene2 has copies); the tracks' other .ogg files are music and a speech
        (r"/(library/stklib_steamLocomotive_a/steamLocomotive|tracks/black_forest/(cow|steamLocomotive)|tracks/scotland/sheep"
         r"|tracks/introcutscene/(spaceship_engine|spaceship_engine_short|button)|tracks/stk_enterprise/bzzt2"
         r"|tracks/xr591/hot|karts/sara_the_racer/skid)\.ogg$", "sfx")]),
    "lincity-ng-data": (["*/sounds/*", "*/music/*"], ct.files(), [("/music/", "music"), ("/sounds/", "sfx")]),
    "berusky2-data": (["*.ogg", "*.wav"], ct.files(), [("/music/", "music"), ("/sound/", "sfx")]),
    "lomiri-sounds": (["*.ogg"], ct.files(), [("/camera/", "sfx"), ("/(notifications|ringtones)/", "music")]),
    "krank": (["*/sounds/*"], ct.files(), [(r"/menu/.*\.ogg$", "music"), (AUDIO, "sfx")]),  # atmo.ogg: ambience
    "boswars-data": (["*.wav"], ct.files(), [("/campaigns/", "speech"), (AUDIO, "sfx")]),
    "openarena-data": (["*.pk3"], ct.zips(r"\.pk3$"), [
        ("/music/", "music"), ("/sound/(voices|feedback|player/announcer)/", "speech"), ("/sound/", "sfx")]),
    "openarena-088-data": (["*.pk3"], ct.zips(r"\.pk3$"), [("/music/", "music"), ("/sound/", "sfx")]),
    "lugaru-data": (["*.ogg"], ct.files(), [("(?i)music", "music"), ("/Sounds/", "sfx")]),
    "trackballs-data": (["*.ogg", "*.wav"], ct.files(), [("/music/", "music"), ("/sfx/", "sfx")]),
    "starfighter-data": (["*.ogg"], ct.files(), [("/music/", "music"), ("/sound/", "sfx")]),
    "warmux-data": (["*.ogg"], ct.files(), [("/music/", "music"), ("/sound/", "sfx")]),  # voices: cries
    "hyperrogue-music": (["*.ogg"], ct.files(), [("/music/", "music"), ("/sounds/", "sfx")]),
    "extremetuxracer-data": (["*.ogg", "*.wav"], ct.files(), [("/music/", "music"), ("/sounds/", "sfx")]),
    "naev-data": (["*.ogg", "*.wav"], ct.files(), [("/snd/music/", "music"), ("/snd/sounds/", "sfx")]),
    "colobot-common-sounds": (["*.ogg", "*.wav"], ct.files(), [("/music/", "music"), ("/sounds/", "sfx")]),
    "marsshooter-data": (["*.ogg", "*.wav"], ct.files(), [
        ("/announcer/", "speech"), ("/(toon|interface)/", "sfx"), ("/audio/", "music")]),
    "unknown-horizons": (["*.ogg"], ct.files(), [
        ("/audio/music/", "music"), ("/audio/voice/", "speech"), ("/audio/sounds/", "sfx")]),
    "flare-game": (["*.ogg"], ct.files(), [("/music/", "music"), ("/soundfx/", "sfx")]),
    "wesnoth-1.16-data": (["*/sounds/*"], ct.files(), [("/sounds/", "sfx")]),
    "endless-sky-data": (["*/sounds/*"], ct.files(), [("/sounds/", "sfx")]),
    "flightgear-data-base": (["*/Sounds/*.wav", "*/Sounds/*.ogg"], ct.files(), [
        ("/Sounds/(mk-viii|tcas)/", "speech"), ("/Sounds/", "sfx")]),
    "freecol": (["*/resources/music/*.ogg", "*/resources/sound/*.ogg"], ct.files(), [
        (r"/music/|/sound/anthem/|/intro\.ogg$", "music"), ("/sound/", "sfx")]),
    "freeorion-data": (["*/data/sound/*.ogg"], ct.files(), [("artificial_intelligence", "music"), ("/sound/", "sfx")]),
    "cube2-data": (["*/packages/music/*", "*/packages/sounds/*"], ct.files(), [
        ("/sounds/0ad/", None),  # taken from 0ad-data, whose effects hold the zeroad_sfx dev set
        ("/packages/music/", "music"), ("/packages/sounds/", "sfx")]),
    "trigger-rally-data": (["*data.zip"], ct.zips(r"data\.zip$"), [
        ("/sounds/codriver/", "speech"), ("/sounds/", "sfx")]),
    "tuxfootball": (["*/sound/*"], ct.files(), [(r"\.ogg$", "music"), (r"\.wav$", "sfx")]),
    "openttd-opensfx": (["*.cat"], ct.riff_wavs(r"\.cat$"), [(".", "sfx")]),
    "7kaa-data": (["*/SOUND/*"], ct.files(), [("/SOUND/", "sfx")]),
    "heroes-sound-effects": (["*.wav"], ct.files(), [("/sfx/", "sfx")]),
    "oxygen-sounds": (["*.ogg"], ct.files(), [(AUDIO, "sfx")]),
    "searchandrescue-data": (["*/sounds/*.wav", "*/music/*.wav"], ct.files(), [
        ("/music/", "music"), ("/overspeed", None),  # overspeed*: flightgear-data-base has them
        ("/sounds/", "sfx")]),  # aircraft engines, gear, crashes, thunder
    "triplea": (["*/assets/sounds/*"], ct.files(), [
        (r"/sounds/[^/]+/(battle_|bombing_|placed_|click_)", "sfx")]),  # the rest: fanfares and anthems
    "caveexpress-data": (["*/sounds/*.ogg"], ct.files(), [
        ("/music-", "music"), ("/sounds/", "sfx")]),  # cave1/2.ogg: cave ambience (noise, drips, wind)
    "gnome-shell-pomodoro-data": (["*/sounds/*.ogg"], ct.files(), [(AUDIO, "sfx")]),  # birdsong, clock, bells
    "etw-data": (["*.wav"], ct.files(), [("/music/", "music"), ("/(crowd|intro)/", "sfx")]),  # snd/: calls mixed in
    "netpanzer-data": (["*/sound/*.wav"], ct.files(), [
        ("selected|affirm|yessir|movout|tarconf", "speech"), (AUDIO, "sfx")]),
    "alienblaster-data": (["*.wav"], ct.files(), [(r"/(intro|playon)\.wav$", "music"), (AUDIO, "sfx")]),
    "wordwarvi-sound": (["*.ogg"], ct.files(), [
        ("/(destiny|dtox|highscoremusic|lucky)", "music"),
        ("/(UseTheSource|aaaah|abducted|help_|hohoho|nice_bank|ow_my|woohoo|yay_santa)", None),  # voices
        (AUDIO, "sfx")]),
    "torcs-data": (["*/data/sound/*.wav", "*/data/music/*.ogg"], ct.files(), [
        ("/music/", "music"), ("/sound/", "sfx")]),  # engines, skids, crashes
    "gigalomania-data": (["*/music/*.ogg", "*/sound/*"], ct.files(), [
        ("/music/", "music"), ("/sound/(biplane|jetplane|spaceship|bomb|woodbrk|pain1|misc_menu)", "sfx")]),
    "plee-the-bear-data": (["*.ogg", "*.wav"], ct.files(), [
        ("/music/", "music"), ("/sound/(scale|sequencer)/", None), ("/sound/", "sfx")]),  # scale: notes
    "micropolis-data": (["*/sounds/*.wav"], ct.files(), [(r"/(a|e|o|aaah|oop|sorry|uhuh)\.wav$", None),
                                                         (AUDIO, "sfx")]),  # skipped: voices
    "csmash-data": (["*.wav"], ct.files(), [(r"/(click|racket|table)\.wav$", "sfx"), (AUDIO, "speech")]),  # scores
    "foobillardplus-data": (["*.wav"], ct.files(), [(r"/intro\.wav$", "music"), (AUDIO, "sfx")]),
    "spacezero": (["*.wav"], ct.files(), [(r"/music\.wav$", "music"), (AUDIO, "sfx")]),
    "mirrormagic-data": (["*.wav"], ct.files(), [("halloffame", "music"), (AUDIO, "sfx")]),
    "brainparty-data": (["*.ogg", "*.wav"], ct.files(), [(r"/electricity\.ogg$", "music"), (AUDIO, "sfx")]),
    "teeworlds-data": (["*/data/audio/*.wv"], ct.files(r"\.wv$"), [  # WavPack: decoded by ffmpeg
        ("/music_", "music"), ("/vo_", None),  # vo_teefault_*: the tees' cries and grunts (left out)
        ("/audio/", "sfx")]),
    "planetblupi-common": (["*/sound/en/*.wav"], ct.files(), [  # the 34 files every language has: Blupi's voice
        (r"/sound/en/sound0(30|49)\.wav$", None),  # colobot has them
        (r"/sound/en/sound0(0[01]|1[1-356]|2[0-689]|3[0-24-689]|4\d|5[0-5]|7[4-9]|8[0-4])\.wav$", "sfx")]),
    "neverball-common": (["*/bgm/*.ogg", "*/snd/*.ogg"], ct.files(), [("/bgm/", "music"), (  # the rest: voices
        r"/snd/(ball|bink|bump|bumpbig|bumplil|coin|grow|jump|menu|shrink|switch|tick|tock)\.ogg$", "sfx")]),
    "pinball-table-gnu-data": (["*.ogg", "*.wav"], ct.files(), [(r"/music\.ogg$", "music"), (r"/(bumpsoft|nudge)\.wav$", None), (
        r"/(knockdown|multiball|nudge|shoot|flip2br?|bumpsoft|plunger|bump|raise-stopper|lock|reset_knockdowns)"
        r"\.(ogg|wav)$", "sfx")]),  # gplv*, freedom*, *_letter, *_all: maybe spoken, left out
    "crrcsim-data": (["*/sounds/*.wav"], ct.files(), [("/f3f/|/fan\\.wav$", None), ("/sounds/", "sfx")]),  # f3f: callouts
    "wing-data": (["*.wav"], ct.files(), [(r"/(go|one|two|three|gameover)\.wav$", None), (AUDIO, "sfx")]),
    # Copies of files already in the corpus (found by cross-correlating the decoded audio) are skipped
    # by name below: abe's object.wav (lincity-ng), barrage's expl2 (= expl1), amphetamine's test.wav
    # (= staffh), starvoyager's 28.wav (= 16), circuslinux's applause/splat (tuxtype), gamine's
    # grow/tuxok/youcannot (tuxpaint) and level (davegnukem's lightmag), pinball's bumpsoft/nudge
    # (pinball-data), planetblupi's sound030/049 (colobot), crrcsim's fan.wav (flightgear's gear.wav).
    "barrage": (["*.wav"], ct.files(), [(r"/expl2\.wav$", None), (AUDIO, "sfx")]),
    "amphetamine-data": (["*.wav"], ct.files(), [(r"/test\.wav$", None), (AUDIO, "sfx")]),
    "starvoyager-data": (["*.wav"], ct.files(), [(r"/28\.wav$", None), (AUDIO, "sfx")]),
    "circuslinux-data": (["*.wav"], ct.files(), [(r"/(applause|splat|wahoo)\.wav$", None), (AUDIO, "sfx")]),
    "minetest-mod-homedecor": (["*.ogg"], ct.files(), [(r"/(fire_small|homedecor_trash_all)\.ogg$", None),
                                                        (AUDIO, "sfx")]),  # minetest-data, unified-inventory
    "minetest-mod-throwing-arrows": (["*.ogg"], ct.files(), [(r"_(build|teleport)_arrow\.ogg$", None),
                                                              (AUDIO, "sfx")]),  # nexuiz-data has them
    "minetest-mod-xdecor": (["*.ogg"], ct.files(), [("xdecor_enchanting", None), (AUDIO, "sfx")]),  # wesnoth's heal
    "minetest-mod-mesecons": (["*.ogg"], ct.files(), [("noteblock", None), (AUDIO, "sfx")]),  # noteblock: notes
    "kgoldrunner": (["*/themes/*.ogg"], ct.files(), [(r"/(victory|gameover|completed)\.ogg$", None),
                                                     (AUDIO, "sfx")]),  # skipped: jingles
    "flightgear-data-ai": (["*/AI/Sounds/*.wav"], ct.files(), [("/Sounds/", "sfx")]),  # hot-air balloon burner
    # XBlast: headerless unsigned 8-bit PCM at 22050 Hz; the files the game's sound table marks as not mono
    # are interleaved stereo. Music: the fanfares and the 'step' background loops; skipped: dead/ouch (cries).
    "xblast-tnt-sounds": (["*/sounds/*.raw"], ct.raw_pcm(r"/sounds/[^/]+\.raw$", 22050, "u1", stereo=(
        r"/(xb_(bad|dead|ouch|intro|appl|app2|shoot|nvis|nvnc|won|haunt|warn|stun|whrl|cmpnd)|xbinj|xbfin|xbholy)\.raw$")), [
        (r"/(xb_intro|xb_won|xbfin|xbstep\d)\.raw$", "music"), (r"/xb_(dead|ouch)\.raw$", None), (".", "sfx")]),
    "freetennis-common": (["*/sfx/*.wav"], ct.files(), [(  # the rest: umpire calls, spoken hints, grunts
        r"/sfx/(colpo|palla|palla pesante|palla leggera|pubblico|rete|taglio|muro2|battuta3|risposta1"
        r"|menu_back|menu_selezione)\.wav$", "sfx")]),
    "flightgear-data-models": (["*/Models/Geometry/*.wav"], ct.files(), [  # Crater's: alienblaster's explosionBoss
        (r"/RP-3/explosion\.wav$", "sfx")]),
    "pinball-table-hurd-data": (["*.ogg", "*.wav"], ct.files(), [(r"/(intro|freesoftwaresong)\.ogg$", "music"),
                                                                  (r"/flip\.wav$", "sfx")]),  # the rest: pinball-data's
    "overgod-data": (["*.wav"], ct.files(), [("/beat/", None), (AUDIO, "sfx")]),  # beat/: the music's notes
    "hex-a-hop-data": (["*.ogg"], ct.files(), [("/music-", "music"), ("/sound-", "sfx")]),
    "davegnukem-data": (["*.ogg", "*.wav"], ct.files(), [("/music/", "music"), ("/sounds/", "sfx")]),
    "gamine-data": (["*.ogg", "*.wav"], ct.files(), [("/BachJSBrandenburg", "music"),
                                                     (r"/(grow|tuxok|youcannot|level)\.wav$", None), (AUDIO, "sfx")]),
    "abe-data": (["*.ogg", "*.wav"], ct.files(), [(r"/object\.wav$", None), (r"\.ogg$", "music"), (AUDIO, "sfx")]),
    **{p: (["*.ogg", "*.wav"], ct.files(), [(rx, "music"), (AUDIO, "sfx")]) for p, rx in (  # one music track each
        ("bumprace-data", "/Flying_me_softly"),
        ("orbital-eunuchs-sniper-data", r"/oes\.ogg$"), ("funnyboat", "/JDruid-Trip"))},
    **{p: (["*.oga", "*.wav"], ct.files(), [(r"/(desktop-log|system-(ready|shutdown|bootup))", "music"), (AUDIO, "sfx")])
       for p in ("sound-theme-freedesktop", "yaru-theme-sound", "deepin-sound-theme")},  # desktop jingles: music
    # music
    "ufoai-music": (["*.pk3"], ct.zips(r"\.pk3$"), [("/music/", "music")]),
    "nexuiz-music": (["*.pk3"], ct.zips(r"\.pk3$"), [("/cdtracks/", "music")]),
    "planetblupi-music-ogg": (["*.ogg"], ct.files(), [(AUDIO, "music")]),
    "blobwars-data": (["*/music/*", "*/sound/*"], ct.files(r"/(music|sound)/[^/.]+$"), [
        ("/music/", "music"), ("/sound/", "sfx")]),
    "singularity-music": (["*.ogg"], ct.files(), [(AUDIO, "music")]),
    "drascula-music": (["*.ogg"], ct.files(), [(AUDIO, "music")]),
    "pushover-data": (["*.ogg"], ct.files(), [(AUDIO, "music")]),
    "fretsonfire-songs-muldjord": (["*.ogg"], ct.files(), [(AUDIO, "music")]),
    "fretsonfire-songs-sectoid": (["*.ogg"], ct.files(), [(AUDIO, "music")]),
    "wizznic-data": (["*.ogg", "*/music/*"], ct.files(r"/music/[^/]+$|\.ogg$"), [
        ("/music/|music\.ogg$", "music"), ("/snd/", "sfx")]),
    "openclonk-data": (["*Music.ocg/*.ogg", "*Sound.ocg"], ct.chain(ct.files(), ct.c4group(r"/Sound\.ocg$")), [
        ("/Music.ocg/", "music"), ("/Clonk.ocg/Skin.ocg/", None),  # skins: the clonks' voices
        ("/Sound.ocg/", "sfx")]),
    "powermanga-data": (["*.ogg", "*.wav"], ct.files(), [(r"\.ogg$", "music"), (r"\.wav$", "sfx")]),
    "zaz-data": (["*.ogg", "*.wav"], ct.files(), [(r"/mus\d\.ogg$", "music"), (AUDIO, "sfx")]),
    "ardentryst": (["*.ogg"], ct.files(), [("/Music/", "music"), ("/Sounds/", "sfx")]),
    "enigma-data": (["*.ogg", "*.wav"], ct.files(), [("/music/", "music"), ("/soundsets/", "sfx")]),
    "xmoto-data": (["*.ogg"], ct.files(), [("/Musics/", "music")]),
    "asc-music": (["*.mp3"], ct.files(), [(AUDIO, "music")]),
    "garden-of-coloured-lights-data": (["*.wav"], ct.files(), [("/beat/", "music"), ("/wavs/", "sfx")]),
    "moon-lander-data": (["*.wav"], ct.files(), [(AUDIO, "sfx")]),
    "bucklespring-data": (["*.wav"], ct.files(), [(AUDIO, "sfx")]),
    "tomatoes-data": (["*.it"], ct.tracker(), [(".", "music")]),
    "solarwolf": (["*/music/*", "*/audio/*.wav"], TRACKER_AND_FILES, [("/music/", "music"), ("/audio/", "sfx")]),
    "tuxmath-data": (["*/sounds/*"], TRACKER_AND_FILES, [(r"\.(mod|ogg)$", "music"), (r"\.wav$", "sfx")]),
    "tuxtype-data": (["*/tuxtype/sounds/*"], TRACKER_AND_FILES, [(r"\.(mod|ogg)$", "music"), (r"\.wav$", "sfx")]),
    "open-invaders-data": (["*.mod", "*.wav"], TRACKER_AND_FILES, [(r"\.mod$", "music"), (r"\.wav$", "sfx")]),
    "criticalmass-data": (["*.xm"], ct.tracker(), [(".", "music")]),
    "toppler": (["*.ogg"], ct.files(), [(AUDIO, "music")]),
    # tracker modules (rendered by openmpt123) and MIDI (rendered by fluidsynth, see EXTRA)
    "tecnoballz-data": (["*.mod", "*.wav"], TRACKER_AND_FILES, [("/musics/", "music"), ("/sounds/", "sfx")]),
    "pekka-kana-2-data": (["*.xm", "*.wav"], TRACKER_AND_FILES, [
        ("/music/", "music"), ("/(sfx|sprites)/", "sfx")]),
    "heroes-sound-tracks": (["*.xm"], ct.tracker(), [("/mod/", "music")]),
    "freedroid-data": (["*/sound/*"], TRACKER_AND_FILES, [(r"\.(mod|ogg)$", "music"), (r"\.wav$", "sfx")]),
    "pingus-data": (["*/music/*", "*/sounds/*.wav"], TRACKER_AND_FILES, [("/music/", "music"), ("/sounds/", "sfx")]),
    "rafkill-data": (["*.xm", "*.mod"], ct.tracker(), [(".", "music")]),
    "pachi-data": (["*/music/*", "*/sounds/*.wav"], TRACKER_AND_FILES, [("/music/", "music"), ("/sounds/", "sfx")]),
    "biniax2-data": (["*/music/*", "*/sound/*.wav"], TRACKER_AND_FILES, [("/music/", "music"), ("/sound/", "sfx")]),
    "openttd-openmsx": (["*.mid"], ct.midi(), [(".", "music")]),
    "mma": (["*.mid"], ct.midi(), [(".", "music")]),
    "freedoom": (["*.wad"], ct.doom_wad(), [(r"\.mid$", "music"), (r"\.dmx$", "sfx")]),
    "freedink-data": (["*/Sound/*"], ct.chain(ct.midi(), ct.files()), [
        (r"\.(mid|ogg)$", "music"), (r"\.wav$", "sfx")]),
}
# Built only when named in --packages: solo phrases of all 128 General MIDI programs, rendered with the
# package's own TimGM6mb.sf2 (phrases.py). Tried and left out of the default corpus: no gain on any dev
# set at 64,000 crops (docs/training.md, "Solo instrument phrases").
OPTIONAL = {
    "timgm6mb-soundfont": (["*TimGM6mb.sf2"], phrases.solo_phrases(), [(".", "music")]),
}
for _p in ("gunroar-data", "torus-trooper-data", "parsec47-data", "tumiki-fighters-data", "noiz2sa-data",
           "rrootage-data", "mu-cade-data", "titanion-data",  # Kenta Cho's shooters: ogg music, wav effects
           "a7xpg-data", "amoebax-data", "pathological", "seahorse-adventures", "hannah-data", "pinball-data",
           "mazeofgalious-data", "angrydd"):  # the same split; gameover.wav skipped in all of them: angrydd's
    # is solarwolf's, and pinball-data's two tables have one each (the only other packages of the list that do)
    SOURCES[_p] = (["*.ogg", "*.wav"], ct.files(), [(r"/gameover\.wav$", None), (r"\.ogg$", "music"),
                                                    (r"\.wav$", "sfx")])
for _p in ("bzflag-data", "gnubg-data", "tuxpaint-data", "simutrans-pak64",
           "atanks-data", "chromium-bsu-data", "holotz-castle-data", "lbreakout2-data", "minetest-data",
           "opencity-data", "pokerth-data", "supertransball2-data", "kapman", "kbounce", "granatier",
           "kollision", "ksirk", "knavalbattle", "kolf", "gnome-nibbles", "gnome-robots",
           "trophy-data", "dustracing2d-data", "psi-plus-sounds", "tworld-data",
           "cuyo-data", "gl-117-data", "madbomber-data", "sdl-ball-data", "stormbaancoureur-data",
           "njam-data", "bomberclone-data", "ceferino-data",
           "meritous-data", "monsterz-data", "slimevolley-data", "freegish-data",
           "pink-pony-data", "openssn-data", "jigzo-data", "dreamchess-data", "ri-li-data", "workrave-data",
           *(f"minetest-mod-{m}" for m in ("craftguide", "lucky-block", "mobs-redo", "nether",
                                            "unified-inventory"))):  # small effect sets
    SOURCES[_p] = (["*.ogg", "*.wav"], ct.files(), [(AUDIO, "sfx")])
# Licences read by hand from copyright files that are free-form and that
# debaudio.licence() misreads ("same", a library's licence, a licence name missing).
LICENCE = {
    "fretsonfire-songs-muldjord": "CC-BY-SA-3.0 (read from the copyright file)",
    "singularity-music": "CC-BY-SA-3.0 (read from the copyright file)",
    "openclonk-data": "ISC; CC-BY-3.0; CC0-1.0 (read from the copyright file)",
    **{p: "BSD-2-Clause (read from the copyright file)" for p in (
        "gunroar-data", "torus-trooper-data", "parsec47-data", "tumiki-fighters-data", "noiz2sa-data",
        "rrootage-data", "mu-cade-data", "titanion-data", "a7xpg-data")},
}
# More packages a package needs unpacked below its own root: the MIDI sound font
# (timgm6mb-soundfont, GPL-2; never fluid-soundfont-gm, which the dev sets use).
EXTRA = {p: [("timgm6mb-soundfont", ["*TimGM6mb.sf2"])] for p in ("openttd-openmsx", "mma", "freedink-data", "freedoom")}
for _p in [*SOURCES, *OPTIONAL, *(e for x in EXTRA.values() for e, _ in x)]:  # never mix dev-set or
    assert _p not in da.DEVSET_PACKAGES, _p                          # reserved packages in
    da.check_allowed(_p)


def iter_files(root, archive):
    """Yield (relative path, loader) for every audio file of an unpacked package."""
    if callable(archive):
        yield from archive(root)
        return
    if archive:
        with zipfile.ZipFile(os.path.join(root, archive)) as z:
            for name in sorted(z.namelist()):
                if re.search(AUDIO, name, re.I):
                    yield name, (lambda n=name: z.read(n))
        return
    for d, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            p = os.path.join(d, f)
            if re.search(AUDIO, f, re.I) and os.path.isfile(p):
                rel = os.path.relpath(p, root)
                yield rel, (lambda p=p: p)


def unique_stem(rel, used):
    """File-name stem for the chunks of REL: its path made ASCII-safe, plus a short
    hash of the path when that name is already in USED (names that lose their
    non-ASCII letters, or the same name as .ogg and .wav). Adds it to USED."""
    stem = da.safe_name(os.path.splitext(rel)[0].replace("usr/share/", ""))
    if stem in used:
        stem += "_" + hashlib.sha1(rel.encode()).hexdigest()[:8]
    used.add(stem)
    return stem


def build_package(pkg, args):
    part = os.path.join(args.out, "parts", f"{pkg}.csv")
    if os.path.exists(part):
        print(f"[skip] {pkg}: done")
        return
    patterns, archive, rules = {**SOURCES, **OPTIONAL}[pkg]
    deb = da.fetch_deb(pkg, args.debs)
    root = da.extract(pkg, deb, os.path.join(args.work, pkg), patterns)
    for extra, pats in EXTRA.get(pkg, []):
        da.extract(extra, da.fetch_deb(extra, args.debs), os.path.join(root, "_extra", extra), pats)
    os.makedirs(os.path.join(args.out, "licences"), exist_ok=True)
    cp = da.copyright_path(root, pkg)
    if os.path.exists(cp):
        shutil.copy(cp, os.path.join(args.out, "licences", f"{pkg}.copyright"))
    lic = LICENCE.get(pkg) or da.licence(cp)
    rows, maxlen, used = [], int(args.max_chunk * da.SR), set()
    for rel, load in iter_files(root, archive):
        key = rel if isinstance(archive, str) else "/" + rel
        cat = next((c for rx, c in rules if re.search(rx, key)), None)
        if cat is None:
            continue
        try:
            x = da.load_16k_mono(load())
        except Exception as e:  # noqa: BLE001
            print(f"  [warn] {pkg}:{rel}: {e}")
            continue
        if x.size < args.min_len * da.SR or da.is_silent(x):
            continue
        n = math.ceil(x.size / maxlen)  # equal chunks, each <= max_chunk
        step = math.ceil(x.size / n)
        stem = unique_stem(rel, used)
        for k in range(n):
            seg = x[k * step:(k + 1) * step]
            if seg.size < args.min_len * da.SR or da.is_silent(seg):
                continue
            path = os.path.join("audio", cat, pkg, f"{stem}_{k:02d}.flac")  # by category first: training balances by top folder
            os.makedirs(os.path.dirname(os.path.join(args.out, path)), exist_ok=True)
            sf.write(os.path.join(args.out, path), seg.clip(-1, 1), da.SR, subtype="PCM_16")
            rows.append([path, pkg, cat, lic, f"{seg.size / da.SR:.3f}", rel])
    os.makedirs(os.path.dirname(part), exist_ok=True)
    with open(part + ".tmp", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    os.replace(part + ".tmp", part)
    if not args.keep_work:
        shutil.rmtree(root, ignore_errors=True)
    h = sum(float(r[4]) for r in rows) / 3600
    print(f"[done] {pkg}: {len(rows)} files, {h:.2f} h, licence: {lic}")


def write_manifest(args):
    rows = []
    for pkg in [*SOURCES, *OPTIONAL]:  # the optional ones where they were built
        part = os.path.join(args.out, "parts", f"{pkg}.csv")
        if os.path.exists(part):
            lic = LICENCE.get(pkg) or da.licence(os.path.join(args.out, "licences", f"{pkg}.copyright"))
            rows += [r[:3] + [lic] + r[4:] for r in csv.reader(open(part))]
    with open(os.path.join(args.out, "manifest.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "source_package", "category", "licence", "duration_s", "source_file"])
        w.writerows(rows)
    per_pkg, per_cat, lics = defaultdict(lambda: defaultdict(float)), defaultdict(float), {}
    for r in rows:
        per_pkg[r[1]][r[2]] += float(r[4]) / 3600
        per_cat[r[2]] += float(r[4]) / 3600
        lics[r[1]] = r[3]
    cats = ("music", "speech", "sfx")
    print("\n| package | " + " | ".join(f"{c} h" for c in cats) + " | licence column |")
    print("|---|" + "---:|" * len(cats) + "---|")
    for p, hours in sorted(per_pkg.items(), key=lambda kv: -sum(kv[1].values())):
        print(f"| {p} | " + " | ".join(f"{hours[c]:.2f}" if c in hours else "" for c in cats)
              + f" | {lics[p]} |")
    print("\n" + "  ".join(f"{c}: {h:.2f} h" for c, h in sorted(per_cat.items())))
    print(f"total: {sum(per_cat.values()):.2f} h in {len(rows)} files from {len(per_pkg)} packages")

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output root (e.g. DATA/corpus)")
    ap.add_argument("--debs", default=None, help="where .deb files are cached (default OUT/../debs)")
    ap.add_argument("--work", default=None, help="scratch dir for unpacking (default OUT/_work)")
    ap.add_argument("--packages", nargs="*", default=list(SOURCES),
                    help=f"subset of packages (default: all but the optional {', '.join(OPTIONAL)})")
    ap.add_argument("--summary", action="store_true", help="only rewrite manifest.csv and print the summary")
    ap.add_argument("--max-chunk", type=float, default=30.0, help="max chunk length in seconds")
    ap.add_argument("--min-len", type=float, default=0.25, help="drop clips shorter than this (s)")
    ap.add_argument("--keep-work", action="store_true", help="keep unpacked packages")
    args = ap.parse_args()
    args.debs = args.debs or os.path.join(os.path.dirname(os.path.abspath(args.out)), "debs")
    args.work = args.work or os.path.join(args.out, "_work")
    for pkg in args.packages:
        da.check_allowed(pkg)
        if pkg not in SOURCES and pkg not in OPTIONAL:
            raise SystemExit(f"unknown package {pkg!r}; known: {', '.join([*SOURCES, *OPTIONAL])}")
    for pkg in [] if args.summary else args.packages:
        build_package(pkg, args)
    write_manifest(args)


if __name__ == "__main__":
    main()
